"""tutorial_lib.infra.figcheck finds overlapping and cut texts, and passes a figure that reads."""
import matplotlib
matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from tutorial_lib.infra import figcheck  # noqa: E402


def test_overlapping_axis_labels_fail():
    # two stacked axes with big labels and no layout engine: the top axes' tick labels run
    # into the bottom axes' title
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(4, 3))
    top.set_xlabel('a long x label of the top plot', fontsize=14)
    bottom.set_title('the bottom title', fontsize=14)
    with pytest.raises(figcheck.FigureLayoutError) as err:
        figcheck.check_figure(fig)
    message = str(err.value)
    assert any('overlaps' in line and "'the bottom title'" in line
               for line in message.splitlines()), message
    plt.close(fig)


def test_overlapping_tick_labels_fail():
    fig, ax = plt.subplots(figsize=(3, 2))
    ax.set_xticks(range(10))
    ax.set_xticklabels(['label number %d' % i for i in range(10)])
    ax.set_title('crowded ticks')
    with pytest.raises(figcheck.FigureLayoutError, match="crowded ticks.*'label number 0' .*overlaps 'label number 1'"):
        figcheck.check_figure(fig)
    plt.close(fig)


def test_cut_title_fails():
    fig, ax = plt.subplots(figsize=(2, 2))
    ax.set_title('a title far too long for a figure only two inches wide')
    with pytest.raises(figcheck.FigureLayoutError, match='cut at the figure edge'):
        figcheck.check_figure(fig)
    plt.close(fig)


def test_clean_figure_passes():
    fig, axes = plt.subplots(1, 2, figsize=(8, 3), layout='constrained')
    for ax, name in zip(axes, ('left', 'right')):
        ax.plot([0, 1, 2], [1, 3, 2], label='a line')
        ax.set_title('the %s plot' % name)
        ax.set_xlabel('step')
        ax.set_ylabel('loss')
        ax.legend()
    fig.suptitle('two plots that read')
    assert figcheck.problems(fig) == []
    figcheck.check_figure(fig)
    plt.close(fig)


def test_slanted_tick_labels_are_compared_as_rotated_boxes():
    # 45-degree labels whose bounding boxes overlap but whose letters do not
    fig, ax = plt.subplots(figsize=(5, 3), layout='constrained')
    ax.bar(range(6), range(6))
    ax.set_xticks(range(6))
    ax.set_xticklabels(['category %d' % i for i in range(6)], rotation=45, ha='right',
                       rotation_mode='anchor')
    assert figcheck.problems(fig) == []
    plt.close(fig)


def test_hidden_axes_do_not_count():
    fig, axes = plt.subplots(1, 3, figsize=(6, 2), layout='constrained')
    for ax in axes:
        ax.imshow([[0, 1], [1, 0]])
        ax.axis('off')
        ax.set_title('img')
    assert figcheck.problems(fig) == []
    plt.close(fig)


def test_show_checks_before_displaying():
    fig, ax = plt.subplots(figsize=(2, 2))
    ax.set_title('a title far too long for a figure only two inches wide')
    with pytest.raises(figcheck.FigureLayoutError):
        figcheck.show()
    plt.close('all')


def test_cell_end_check_keeps_the_last_value():
    import ast
    tree = figcheck._CheckAtCellEnd().visit(ast.parse('x = 1\nx + 1'))
    namespace = {}
    code = ast.unparse(tree)
    assert 'check_open_figures' in code and code.strip().endswith('__figcheck_last__')
    exec(compile(tree, '<cell>', 'exec'), namespace)
    assert namespace['__figcheck_last__'] == 2


def _notebook(*cells):
    import nbformat
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]
    nb.metadata['kernelspec'] = {'name': 'python3', 'display_name': 'Python 3',
                                 'language': 'python'}
    return nb


def test_a_notebook_cell_with_a_cut_title_fails(monkeypatch, tmp_path):
    # as `make test` runs the notebooks: the backend from the environment, the check at
    # plt.show() and at the end of a cell that leaves its figure to be displayed
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError
    monkeypatch.setenv('MPLBACKEND', 'module://tutorial_lib.infra.figcheck')
    bad = "fig, ax = plt.subplots(figsize=(2, 2))\nax.set_title('a title far too long for a figure only two inches wide')"
    imports = 'import matplotlib.pyplot as plt\nimport tutorial_lib'
    for last in (bad + '\n1 + 1', bad + '\nplt.show()'):
        nb = _notebook(imports, last)
        with pytest.raises(CellExecutionError, match='FigureLayoutError'):
            NotebookClient(nb, timeout=120, kernel_name='python3',
                           resources={'metadata': {'path': str(tmp_path)}}).execute()
    good = _notebook(imports, "fig, ax = plt.subplots(figsize=(4, 3), layout='constrained')\n"
                     "ax.plot([1, 2])\nax.set_title('fine')\nx = 41\nx + 1")
    NotebookClient(good, timeout=120, kernel_name='python3',
                   resources={'metadata': {'path': str(tmp_path)}}).execute()
    outputs = good.cells[1].outputs
    assert any('image/png' in o.get('data', {}) for o in outputs)      # still displayed
    assert any(o.get('data', {}).get('text/plain') == '42' for o in outputs)  # last value kept
