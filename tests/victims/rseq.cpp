// State: rseq (restartable sequences) registration of the main thread and a
// second thread, as glibc 2.35+ sets it up for every thread: a struct rseq
// in each thread's TCB at thread pointer + __rseq_offset, registered with
// the kernel with glibc's length and signature.
// Checks per thread: __rseq_size/__rseq_offset unchanged; the area is still
// registered at the same address with the same length and signature (a new
// registration with those arguments fails with EBUSY, where an unregistered
// thread would succeed); cpu_id is a valid CPU (not -1/-2 and below the
// number of CPUs) and, once stable, equals getcpu(); rseq_cs is 0.
#include "victim.h"

#include <atomic>
#include <linux/rseq.h>
#include <pthread.h>
#include <sys/rseq.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace {

struct Reg {
  struct rseq* area;
  unsigned len;
};

struct rseq* my_area() {
  return reinterpret_cast<struct rseq*>(static_cast<char*>(__builtin_thread_pointer()) + __rseq_offset);
}

// EBUSY means: already registered with exactly these arguments.
int try_register(struct rseq* area, unsigned len) {
  long r = syscall(SYS_rseq, area, len, 0, RSEQ_SIG);
  return r == 0 ? 0 : errno;
}

// glibc 2.36 registers sizeof(struct rseq_area) (32); later versions may
// register __rseq_size. Find the length it used (the one that gives EBUSY).
Reg find_registration() {
  struct rseq* area = my_area();
  for (unsigned len : {static_cast<unsigned>(__rseq_size), 32u})
    if (try_register(area, len) == EBUSY) return Reg{area, len};
  return Reg{area, 0};
}

// Empty string if this thread's rseq is fine, else why not.
std::string check(const Reg& saved) {
  struct rseq* area = my_area();
  if (area != saved.area) return "rseq area moved";
  int e = try_register(area, saved.len);
  if (e == 0) return "rseq was not registered (a new registration succeeded)";
  if (e != EBUSY) return "re-registration gave " + std::string(std::strerror(e)) + " instead of EBUSY: other length or signature";
  if (area->rseq_cs != 0) return "rseq_cs is not 0";
  const long ncpu = sysconf(_SC_NPROCESSORS_CONF);
  for (int attempt = 0; attempt < 1000; ++attempt) {
    int cpu = static_cast<int>(__atomic_load_n(&area->cpu_id, __ATOMIC_RELAXED));
    if (cpu < 0 || cpu >= ncpu) return "cpu_id is " + std::to_string(cpu);
    unsigned real = 0;
    syscall(SYS_getcpu, &real, nullptr, nullptr);
    if (static_cast<int>(real) == cpu && static_cast<int>(__atomic_load_n(&area->cpu_id, __ATOMIC_RELAXED)) == cpu)
      return "";
    sched_yield();  // migrated in between; try again
  }
  return "cpu_id never agreed with getcpu()";
}

pthread_barrier_t started, go;
Reg thread_saved;
std::string thread_result = "not run";

void* worker(void*) {
  thread_saved = find_registration();
  pthread_barrier_wait(&started);
  pthread_barrier_wait(&go);
  thread_result = check(thread_saved);
  return nullptr;
}

}  // namespace

int main() {
  victim_check(__rseq_size > 0, "glibc did not register rseq (__rseq_size 0; GLIBC_TUNABLES=glibc.pthread.rseq=0?)");
  const unsigned size = __rseq_size;
  const ptrdiff_t offset = __rseq_offset;
  Reg saved = find_registration();
  victim_check(saved.len != 0, "cannot tell the length glibc registered rseq with");
  pthread_barrier_init(&started, nullptr, 2);
  pthread_barrier_init(&go, nullptr, 2);
  pthread_t t;
  victim_check(pthread_create(&t, nullptr, worker, nullptr) == 0, "pthread_create");
  pthread_barrier_wait(&started);
  victim_check(thread_saved.len != 0, "cannot tell the length glibc registered the thread's rseq with");
  std::string pre = check(saved);
  victim_check(pre.empty(), "before checkpoint: %s", pre.c_str());

  victim_ready();
  victim_wait_go();

  victim_check(__rseq_size == size && __rseq_offset == offset, "__rseq_size/__rseq_offset changed");
  std::string r = check(saved);
  victim_check(r.empty(), "main thread: %s", r.c_str());
  pthread_barrier_wait(&go);
  pthread_join(t, nullptr);
  victim_check(thread_result.empty(), "second thread: %s", thread_result.c_str());
  victim_pass();
}
