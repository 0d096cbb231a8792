"""The library's shape: imports go one way (no cycles), modules and functions stay readable.

The import graph counts every import of a tutorial_lib module, at module level and inside
functions. A cycle hidden inside a function still ties two ideas together, so it fails too.
"""
import ast
import pathlib

import pytest

PKG = pathlib.Path(__file__).resolve().parent.parent / 'tutorial_lib'
MAX_MODULE_LINES = 450     # code and comments; docstrings aside
MAX_FUNCTION_LINES = 60    # body lines; the docstring aside
# Imports that may stay inside a function: optional heavy dependencies, which a module
# must not pull in at import time (the course runs without them).
OPTIONAL = {'cupy', 'cupyx', 'playwright', 'torch', 'mpi4py', 'chainermn', 'ipycanvas'}
# The layers README's Layout section shows: a module imports only from its own layer or
# below. A new module must be given a layer here.
LAYERS = {
    'infra (under the course)': 'infra infra.compat infra.backend infra.fastpath infra.fastconv '
                                'infra.fastbn infra.fastadam infra.fastrelu infra.onednn '
                                'infra.onednn_ops infra.threads infra.im2col '
                                'infra.figcheck infra.torch_bench_worker',
    'pictures and plumbing': 'images atomic imageheader cli configs pairs',
    'ideas': 'lines openmoji models patch_dis hints fill hint_unet augment metrics viz',
    'data and checkpoints': 'data cache checkpoints stage2 sketch_cache sketch_rule',
    'training and measuring': 'training updaters extensions evaluation gan_measures distributed',
    'what a learner runs': 'colorize shipping failures widgets sketches ablation train stage2_cli '
                           'lines_cli',
    'infra tools': 'infra.bench infra.bench_workloads infra.bench_profile infra.bench_torch '
                   'infra.gpu_check infra.gpu_cases infra.gpu_report infra.selfcheck '
                   'infra.run_notebooks',
    'old command names (shims)': 'bench gpu_check selfcheck run_notebooks',
}


def module_name(path):
    rel = path.relative_to(PKG.parent).with_suffix('')
    parts = list(rel.parts)
    if parts[-1] == '__init__':
        parts.pop()
    return '.'.join(parts)


def modules():
    return {module_name(p): p for p in sorted(PKG.rglob('*.py'))}


def resolve(importer, node, known):
    """The tutorial_lib modules an ImportFrom/Import node names."""
    out = []
    if isinstance(node, ast.Import):
        for a in node.names:
            if a.name.startswith('tutorial_lib'):
                out.append(a.name)
        return [m for m in out if m in known]
    package = importer if PKG.joinpath(*importer.split('.')[1:], '__init__.py').exists() \
        else importer.rpartition('.')[0]
    if node.level:
        base = package.split('.')
        base = base[:len(base) - node.level + 1]
        prefix = '.'.join(base + ([node.module] if node.module else []))
    elif node.module and node.module.startswith('tutorial_lib'):
        prefix = node.module
    else:
        return []
    for a in node.names:
        candidate = prefix + '.' + a.name
        out.append(candidate if candidate in known else prefix)
    return [m for m in out if m in known and m != importer]


def import_graph():
    known = modules()
    graph, inner = {}, {}
    for name, path in known.items():
        tree = ast.parse(path.read_text())
        edges, hidden = set(), []
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                targets = resolve(name, node, known)
                targets = [t for t in targets if t != 'tutorial_lib']  # REPO_ROOT & co.
                edges.update(targets)
                # the package's own __init__ loads the figure check only under `make test`
                if node.col_offset > 0 and name != 'tutorial_lib':
                    hidden.extend((node.lineno, t) for t in targets)
        graph[name] = edges
        inner[name] = hidden
    return graph, inner


def find_cycles(graph):
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def levels(graph):
    """Level of each module: 0 if it imports no sibling, else 1 + the highest it imports."""
    memo = {}

    def level(v, seen=()):
        if v not in memo:
            memo[v] = 1 + max((level(w, seen + (v,)) for w in graph[v]
                               if w not in seen and w != 'tutorial_lib'), default=-1)
        return memo[v]
    return {v: level(v) for v in graph}


def docstring_lines(tree):
    lines = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(
                    getattr(body[0], 'value', None), ast.Constant) and isinstance(body[0].value.value, str):
                lines.update(range(body[0].lineno, body[0].end_lineno + 1))
    return lines


def test_the_import_graph_has_no_cycle():
    graph, _ = import_graph()
    assert find_cycles(graph) == []


def test_no_sibling_import_hides_inside_a_function():
    _, inner = import_graph()
    hidden = {m: sorted(set(t for _, t in v)) for m, v in inner.items() if v}
    assert hidden == {}


@pytest.mark.parametrize('name', sorted(modules()))
def test_module_is_short(name):
    path = modules()[name]
    text = path.read_text()
    code = len(text.splitlines()) - len(docstring_lines(ast.parse(text)))
    assert code <= MAX_MODULE_LINES, '%s has %d lines besides docstrings' % (name, code)


def test_functions_are_short():
    long = []
    for name, path in modules().items():
        tree = ast.parse(path.read_text())
        doc = docstring_lines(tree)
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                body = set(range(node.body[0].lineno, node.end_lineno + 1)) - doc
                if len(body) > MAX_FUNCTION_LINES:
                    long.append('%s.%s (%d lines)' % (name, node.name, len(body)))
    assert long == []


def test_every_module_says_what_it_is_for():
    missing = [n for n, p in modules().items() if not ast.get_docstring(ast.parse(p.read_text()))]
    assert missing == []


def layer_of():
    return {'tutorial_lib.' + m: i for i, names in enumerate(LAYERS.values()) for m in names.split()}


def test_every_module_has_a_layer():
    assert sorted(set(modules()) - set(layer_of()) - {'tutorial_lib'}) == []


def test_imports_go_down_the_layers():
    graph, _ = import_graph()
    layer = layer_of()
    up = ['%s -> %s' % (m, t) for m, targets in graph.items() if m in layer
          for t in sorted(targets) if layer.get(t, -1) > layer[m]]
    assert up == []


def test_cycle_finder_bites():
    assert find_cycles({'a': {'b'}, 'b': {'c'}, 'c': {'a'}, 'd': set()}) == [['a', 'b', 'c']]
    assert find_cycles({'a': {'b'}, 'b': set()}) == []
    assert levels({'a': {'b'}, 'b': set()}) == {'a': 1, 'b': 0}


if __name__ == '__main__':   # print the layers (README's Layout section is made from this)
    graph, _ = import_graph()
    by_level = {}
    for m, lv in levels(graph).items():
        by_level.setdefault(lv, []).append(m.replace('tutorial_lib.', ''))
    for lv in sorted(by_level):
        print(lv, ' '.join(sorted(by_level[lv])))
