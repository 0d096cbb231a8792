"""Small matplotlib helpers shared by the notebooks: image grids with captions and credits."""
import numpy as np


def _as_displayable(img):
    img = np.asarray(img)
    if img.ndim == 3 and img.shape[0] in (1, 3) and img.shape[2] not in (1, 3):
        img = img.transpose(1, 2, 0)  # CHW -> HWC
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[:, :, 0]
    return img


def add_credit(fig, credit):
    """The data credit line, small and gray, at the bottom of a figure (wrapped to its width)."""
    import textwrap
    # about 0.58 em per character of DejaVu Sans at 7 pt, with a margin on both sides
    chars = max(20, int(fig.get_figwidth() * 72 * 0.9 / (7 * 0.58)))
    return fig.text(0.5, 0.005, textwrap.fill(credit, chars), ha='center', va='bottom',
                    fontsize=7, color='0.35')


def busiest_window(line, side):
    """(rows, cols) slices of the ``side`` x ``side`` window of a line drawing (uint8, 255 =
    paper) with the most ink, on a grid of side/4 steps: where a zoom shows content."""
    ink = (np.asarray(line) < 128).astype(np.float64)
    h, w = ink.shape[:2]
    side = min(side, h, w)
    step = max(1, side // 4)
    best, where = -1.0, (0, 0)
    for y in range(0, h - side + 1, step):
        for x in range(0, w - side + 1, step):
            count = ink[y:y + side, x:x + side].sum()
            if count > best:
                best, where = count, (y, x)
    y, x = where
    return slice(y, y + side), slice(x, x + side)


def short_title(title, width=14):
    """A title that fits a small grid cell: words wrapped, a long hexcode such as
    1F9DC-1F3FB-200D-2642-FE0F on two or three lines, cut at its dashes."""
    title = str(title)
    if ' ' in title or '\n' in title:
        import textwrap
        return '\n'.join(textwrap.fill(p, width) for p in title.split('\n'))
    lines, line = [], ''
    for part in title.split('-'):
        if line and len(line) + 1 + len(part) > width:
            lines.append(line + '-')
            line = part
        else:
            line = part if not line else line + '-' + part
    return '\n'.join(lines + [line])


def finish_figure(fig, title=None, credit=None):
    """Title on top, credit line at the bottom (room kept for it), tight layout."""
    if title:
        fig.suptitle(title)
    bottom = 0
    if credit:
        text = add_credit(fig, credit)
        height = text.get_window_extent(fig.canvas.get_renderer()).height
        bottom = min(0.3, (height + 4) / fig.bbox.height)
    engine = fig.get_layout_engine()
    if engine is not None and hasattr(engine, 'set') and 'rect' in engine.get():
        engine.set(rect=(0, bottom, 1, 1 - bottom))   # constrained layout: room for the credit
    else:
        fig.tight_layout(rect=(0, bottom, 1, 1))
    return fig


def show_grid(images, titles=None, ncols=6, size=2.0, credit=None, suptitle=None):
    """Show uint8 images (gray HxW or RGB HxWx3) in a grid; returns the figure."""
    import matplotlib.pyplot as plt
    n = len(images)
    ncols = max(1, min(ncols, n))
    nrows = (n + ncols - 1) // ncols
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows + (0.3 if credit else 0)),
                             squeeze=False, layout='constrained')
    for i, ax in enumerate(axes.flat):
        ax.axis('off')
        if i >= n:
            continue
        img = _as_displayable(images[i])
        ax.imshow(img, cmap='gray' if img.ndim == 2 else None, vmin=0, vmax=255)
        if titles is not None:
            # long ZWJ-sequence hexcodes would run into the neighbouring titles: wrap them
            ax.set_title(short_title(titles[i], max(12, int(size * 14))), fontsize=8)
    return finish_figure(fig, suptitle, credit)


def show_pairs(pairs, n=8, credit=None, size=1.6):
    """Line art above, color below, for the first n pairs of a data.Pairs."""
    n = min(n, len(pairs))
    images = [pairs.lines[i] for i in range(n)] + [pairs.colors[i] for i in range(n)]
    titles = [pairs.names[i] for i in range(n)] + [''] * n
    return show_grid(images, titles, ncols=n, size=size, credit=credit)
