"""The worker threads of the fast CPU path: which BLAS numpy uses, how many threads to run,
and :func:`run`, which spreads blocks of work over them with a single-threaded BLAS."""
import ctypes
import glob
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy

# Worker threads. None: as many as the BLAS library is set to use (OPENBLAS_NUM_THREADS
# etc. are honoured); 1: no worker threads, BLAS keeps its own threading.
THREADS = None


class Blas:
    """The OpenBLAS that numpy is linked to, found through ctypes (no threadpoolctl):
    its threading mode and functions to get/set its thread count."""

    _NAMES = [('scipy_openblas_get_num_threads64_', 'scipy_openblas_set_num_threads64_',
               'scipy_openblas_get_parallel64_'),
              ('scipy_openblas_get_num_threads', 'scipy_openblas_set_num_threads',
               'scipy_openblas_get_parallel'),
              ('openblas_get_num_threads64_', 'openblas_set_num_threads64_',
               'openblas_get_parallel64_'),
              ('openblas_get_num_threads', 'openblas_set_num_threads',
               'openblas_get_parallel')]

    def __init__(self):
        self.path, self.get, self.set, self.mode = None, None, None, 'unknown'
        for path in self._candidates():
            try:
                lib = ctypes.CDLL(path)
            except OSError:
                continue
            for names in self._NAMES:
                if self._try(lib, path, *names):
                    return

    def _try(self, lib, path, get_name, set_name, par_name):
        """Use these three functions of ``lib`` if setting the thread count works."""
        if not (hasattr(lib, get_name) and hasattr(lib, set_name)):
            return False
        get, set_ = getattr(lib, get_name), getattr(lib, set_name)
        get.restype, get.argtypes = ctypes.c_int, []
        set_.restype, set_.argtypes = None, [ctypes.c_int]
        mode = 'pthreads'  # OpenBLAS's default build
        if hasattr(lib, par_name):
            par = getattr(lib, par_name)
            par.restype, par.argtypes = ctypes.c_int, []
            mode = {0: 'sequential', 1: 'pthreads', 2: 'openmp'}.get(par(), 'unknown')
        before = get()
        set_(1)
        works = get() == 1
        set_(before)
        if works:
            self.path, self.get, self.set, self.mode = path, get, set_, mode
        return works

    @staticmethod
    def _candidates():
        """numpy's own bundled OpenBLAS first (wheels), then any OpenBLAS this process
        has loaded (Linux; e.g. a distribution's numpy linked to libopenblas)."""
        found = []
        site = os.path.dirname(os.path.dirname(numpy.__file__))
        for pattern in ('numpy.libs/*openblas*', 'numpy/.dylibs/*openblas*'):
            for path in sorted(glob.glob(os.path.join(site, pattern))):
                if path not in found:
                    found.append(path)
        try:
            with open('/proc/self/maps') as maps:
                for line in maps:
                    path = line.split(None, 5)[-1].strip() if '/' in line else ''
                    if 'openblas' in os.path.basename(path).lower() and path not in found:
                        found.append(path)
        except OSError:
            pass
        return found


_blas = None
_pool = None
_pool_key = None
_run_lock = threading.Lock()
_tls = threading.local()


def get_blas():
    """The :class:`Blas` of this process (found once)."""
    global _blas
    if _blas is None:
        _blas = Blas()
    return _blas


def _cpu_count():
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def thread_count():
    """How many threads the blocks of one operation may run on."""
    if THREADS is not None:
        return max(1, int(THREADS))
    blas = get_blas()
    if blas.mode == 'pthreads':
        return max(1, min(blas.get(), _cpu_count()))
    if blas.mode == 'sequential':
        return _cpu_count()
    return 1  # MKL, Accelerate, OpenMP OpenBLAS, ...: leave threading to the BLAS


def blas_info():
    """What the fast path found: the BLAS library, its threading, the threads it uses."""
    blas = get_blas()
    return {'library': blas.path, 'mode': blas.mode,
            'blas_threads': blas.get() if blas.get else None, 'fastconv_threads': thread_count()}


def _after_fork_in_child():
    # A forked child inherits neither the worker threads nor a consistent lock state.
    global _pool, _pool_key, _run_lock
    _pool, _pool_key, _run_lock = None, None, threading.Lock()


if hasattr(os, 'register_at_fork'):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _get_pool(workers):
    global _pool, _pool_key
    key = (os.getpid(), workers)  # a forked child needs threads of its own
    if _pool is None or _pool_key[0] != key[0] or _pool_key[1] < workers:
        if _pool is not None and _pool_key[0] == key[0]:
            _pool.shutdown(wait=False)
        _pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix='fastconv')
        _pool_key = key
    return _pool


def run(tasks, work, threads):
    """[work(t) for t in tasks], on up to ``threads`` threads that take the tasks in order
    from a shared queue (so a thread slowed down by another program simply takes fewer).
    While they run, BLAS is set to one thread per caller; results keep the task order."""
    tasks = list(tasks)
    results = [None] * len(tasks)
    workers = min(threads, len(tasks))
    if workers <= 1:
        for i, task in enumerate(tasks):
            results[i] = work(task)
        return results
    queue = iter(enumerate(tasks))
    take = threading.Lock()
    errors = []

    def worker():
        while not errors:
            with take:
                item = next(queue, None)
            if item is None:
                return
            try:
                results[item[0]] = work(item[1])
            except BaseException as e:  # stop everyone, re-raise in the caller
                errors.append(e)
                return

    blas = get_blas()
    with _run_lock:
        previous = blas.get() if blas.mode == 'pthreads' else None
        if previous is not None and previous != 1:
            blas.set(1)
        try:
            futures = [_get_pool(workers - 1).submit(worker) for _ in range(workers - 1)]
            worker()  # the calling thread works too
            for f in futures:
                if not f.cancel():  # started: wait for it; never started: nothing to do
                    f.result()
        except BaseException as e:  # e.g. KeyboardInterrupt while waiting
            errors.append(e)        # the other threads stop after their current block
            raise
        finally:
            if previous is not None and previous != 1:
                blas.set(previous)
    if errors:
        raise errors[0]
    return results


def scratch(slot, size, dtype):
    """A per-thread reusable buffer of ``size`` elements (reusing memory avoids page
    faults on every call; the largest block size per thread stays allocated)."""
    bufs = getattr(_tls, 'bufs', None)
    if bufs is None:
        bufs = _tls.bufs = {}
    nbytes = size * dtype.itemsize
    buf = bufs.get(slot)
    if buf is None or buf.nbytes < nbytes:
        buf = bufs[slot] = numpy.empty(max(nbytes, 64), dtype=numpy.uint8)
    return buf[:nbytes].view(dtype)


def split(total, parts):
    """[0, total) cut into ``parts`` contiguous, nearly equal ranges."""
    parts = max(1, min(parts, total))
    return [(total * i // parts, total * (i + 1) // parts) for i in range(parts)]
