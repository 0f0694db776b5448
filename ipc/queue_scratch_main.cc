#include "ipc/queue.h"
#include <cstdio>
int main() {
  auto q = mp::Queue<int64_t>::Create(3);
  if (!q.ok()) { printf("%s\n", q.status().ToString().c_str()); return 1; }
  for (int i = 0; i < 4; ++i) printf("put %d: %s\n", i, q->PutNoWait(i).ToString().c_str());
  for (int i = 0; i < 4; ++i) { auto v = q->GetNoWait(); printf("get: %s %ld\n", v.status().ToString().c_str(), v.ok() ? *v : -1); }
  auto s = mp::Queue<std::string>::Create();
  std::string big(800000, 'x');
  printf("big put %s\n", s->Put(big).ToString().c_str());
  auto g = s->Get(); printf("big get %s %zu\n", g.status().ToString().c_str(), g.ok() ? g->size() : 0);
}
