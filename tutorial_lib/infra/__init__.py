"""The machinery under the course, not taught by it: making Chainer 7.8.1 import on a 2026
stack (compat), picking CPU or GPU (backend), the fast CPU path (fastpath, fastconv, fastbn,
fastadam), benchmarks, the GPU check, the notebook runner and the figure check of `make test`.
"""
