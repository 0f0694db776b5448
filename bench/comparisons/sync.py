"""Side-by-side comparisons of //sync and //shm (see bench/compare.py)."""

COMPARISONS = [
    Comparison("Lock uncontended acquire+release vs bare CAS spin lock "
               "(CAS to lock, plain store to unlock)",
               mp=Bench("sync_benchmark", "BM_LockUncontended"),
               peer=Bench("sync_benchmark", "BM_CasSpinLockUncontended"),
               goal=within(2)),
    # Reference for the row above: any lock that must see sleeping waiters
    # unlocks with an atomic exchange; this is the CAS lock doing so.
    Comparison("Lock uncontended vs CAS lock with exchange to unlock "
               "(floor of a futex lock)",
               mp=Bench("sync_benchmark", "BM_LockUncontended"),
               peer=Bench("sync_benchmark", "BM_CasXchgLockUncontended"),
               goal=within(1.3)),
    Comparison("Lock uncontended vs robust process-shared pthread_mutex",
               mp=Bench("sync_benchmark", "BM_LockUncontended"),
               peer=Bench("sync_benchmark", "BM_RobustPthreadMutexUncontended"),
               goal=at_least(1)),
    Comparison("2 processes lock/increment/unlock vs Python Lock + Value",
               mp=Bench("sync_benchmark", "BM_LockContended2Proc/real_time"),
               peer=Script("python/sync_bench.py", "lock_contended"),
               goal=at_least(10)),
    Comparison("2 processes lock/increment/unlock vs Boost.Interprocess "
               "interprocess_mutex",
               mp=Bench("sync_benchmark", "BM_LockContended2Proc/real_time"),
               peer=Bench("sync_benchmark",
                          "BM_BoostInterprocessMutexContended2Proc/real_time"),
               goal=at_least(1)),
    Comparison("Semaphore ping-pong (2 processes) vs raw futex ping-pong",
               mp=Bench("sync_benchmark", "BM_SemaphorePingPong/real_time"),
               peer=Bench("sync_benchmark", "BM_RawFutexPingPong/real_time"),
               goal=within(1.3)),
    Comparison("Event ping-pong (2 processes) vs raw futex ping-pong",
               mp=Bench("sync_benchmark", "BM_EventPingPong/real_time"),
               peer=Bench("sync_benchmark", "BM_RawFutexPingPong/real_time"),
               goal=within(1.3)),
    Comparison("Write 256 MiB SharedMemory (faulted in) vs memcpy to private "
               "memory, bandwidth",
               mp=Bench("shm_benchmark", "BM_SharedMemoryWrite/real_time"),
               peer=Bench("shm_benchmark", "BM_MemcpyPrivate/real_time"),
               goal=fraction(0.9)),
    Comparison("First write into a new 256 MiB segment: populate=true "
               "(pre-faulted at creation) vs plain",
               mp=Bench("shm_benchmark",
                        "BM_SharedMemoryFirstWrite/populate/real_time"),
               peer=Bench("shm_benchmark",
                          "BM_SharedMemoryFirstWrite/plain/real_time"),
               goal=at_least(2)),
]
