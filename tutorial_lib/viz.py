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
    """The data credit line, small and gray, at the bottom of a figure."""
    fig.text(0.5, 0.005, credit, ha='center', va='bottom', fontsize=7, color='0.35')


def finish_figure(fig, title=None, credit=None):
    """Title on top, credit line at the bottom (room kept for it), tight layout."""
    if title:
        fig.suptitle(title)
    if credit:
        add_credit(fig, credit)
    fig.tight_layout(rect=(0, 0.03 if credit else 0, 1, 1))
    return fig


def show_grid(images, titles=None, ncols=6, size=2.0, credit=None, suptitle=None):
    """Show uint8 images (gray HxW or RGB HxWx3) in a grid; returns the figure."""
    import matplotlib.pyplot as plt
    n = len(images)
    ncols = max(1, min(ncols, n))
    nrows = (n + ncols - 1) // ncols
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows + (0.3 if credit else 0)),
                             squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis('off')
        if i >= n:
            continue
        img = _as_displayable(images[i])
        ax.imshow(img, cmap='gray' if img.ndim == 2 else None, vmin=0, vmax=255)
        if titles is not None:
            title = str(titles[i])
            # long ZWJ-sequence hexcodes would run into the neighbouring titles
            ax.set_title(title if len(title) <= 16 else title[:15] + '…', fontsize=8)
    return finish_figure(fig, suptitle, credit)


def show_pairs(pairs, n=8, credit=None, size=1.6):
    """Line art above, color below, for the first n pairs of a data.Pairs."""
    n = min(n, len(pairs))
    images = [pairs.lines[i] for i in range(n)] + [pairs.colors[i] for i in range(n)]
    titles = [pairs.names[i] for i in range(n)] + [''] * n
    return show_grid(images, titles, ncols=n, size=size, credit=credit)
