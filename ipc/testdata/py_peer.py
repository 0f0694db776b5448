"""A stock-Python peer for //ipc:listener_test (stdlib only).

  py_peer.py client   FAMILY ADDRESS AUTHKEY   connect, then run the exchange
  py_peer.py listener FAMILY ADDRESS AUTHKEY   print the bound address, accept
                                               one connection, run the exchange

FAMILY is unix or tcp; ADDRESS a path ('@name' = abstract) or host:port;
AUTHKEY '-' for none. The exchange: send b'hello from python', receive a
message and send it back reversed, receive b'bye'. Exit status 0 on success,
3 on AuthenticationError (printed), 4 on any other error.
"""
import multiprocessing.connection as mc
import sys


def parse(family, address):
    if family == "unix":
        return "\0" + address[1:] if address.startswith("@") else address
    host, port = address.rsplit(":", 1)
    return (host.strip("[]"), int(port))


def exchange(conn):
    conn.send_bytes(b"hello from python")
    message = conn.recv_bytes()
    conn.send_bytes(message[::-1])
    if conn.recv_bytes() != b"bye":
        raise RuntimeError("expected bye")
    conn.close()


def main():
    mode, family, address, authkey = sys.argv[1:5]
    key = None if authkey == "-" else authkey.encode()
    address = parse(family, address)
    try:
        if mode == "client":
            conn = mc.Client(address, authkey=key)
        else:
            listener = mc.Listener(address, authkey=key)
            a = listener.address
            if isinstance(a, tuple):
                print("%s:%d" % (a[0], a[1]), flush=True)
            else:
                print(a if not a.startswith("\0") else "@" + a[1:], flush=True)
            conn = listener.accept()
        exchange(conn)
    except mc.AuthenticationError as e:
        print("AuthenticationError:", e, flush=True)
        sys.exit(3)
    except Exception as e:  # noqa: BLE001
        print("error:", type(e).__name__, e, flush=True)
        sys.exit(4)
    print("ok %s" % sys.version.split()[0], flush=True)


main()
