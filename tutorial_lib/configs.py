"""Named training configurations, one line in a notebook or on the command line; notebooks
02-05 train with them.

    python -m tutorial_lib.train --config classroom_l2 --out runs/classroom_l2

``get(name)`` returns a copy you may change (``get('classroom_adv').replace(adv_weight=0.1)``).
Each config has a ``kind``: 'lines' (:class:`TrainConfig`, line art -> colors), 'hints'
(:class:`HintTrainConfig`, line + color hints) or 'stage2' (:class:`Stage2Config`, the 512 px
second stage); the kind picks the network, the data and the updater.

Families: ``quick*`` (tiny and fast: tests and smoke runs), ``classroom_*`` (what a laptop CPU
trains in well under an hour: width 1/4 of the blog's channels, 128 px, batch 8, a doubled
Adam step size; the shipped checkpoints under data/checkpoints/ were made with these) and
``blog_*`` (the blog's own scale: width 1, batch 16, Adam 1e-4; meant for a GPU).

``adv_weight`` is the knob of notebook 03: 0 = reconstruction loss only (the blog's first
attempt), small = the Ad-boss nudges, large = the Ad-boss dominates ("too harsh"). The
reconstruction loss is a mean of values in [-1, 1] (models.encode_colors), the adversarial
loss a softmax cross-entropy (about 0.69 when the Ad-boss cannot tell): the weights are
relative to those scales.
"""
import dataclasses
from dataclasses import dataclass, asdict
from typing import Optional


@dataclass
class TrainConfig:
    name: str
    description: str = ''
    # 'lines' (line art -> colors), 'hints' (line + color hints) or 'stage2' (512 px refiner)
    kind: str = 'lines'
    # what is learned
    rec_loss: str = 'l2'          # 'l2' (the blog) or 'l1' (PaintsChainer's released code)
    adv_weight: float = 0.0       # 0: no discriminator; > 0: rec + adv_weight * adversarial
    dis: str = 'blog'             # the Ad-boss: 'blog' (models.DIS: colors only, one verdict)
    #                               or 'patch' (patch_dis.PatchDIS: lines + colors, a verdict
    #                               per patch; beyond the blog); 'patch_colors': the patch
    #                               Ad-boss on the colors alone
    # the networks
    width: float = 0.25           # channel multiplier: 1 = the blog
    in_ch: int = 1                # 1 = line only; 4 = line + RGB hints (a later notebook)
    init_from: Optional[str] = None  # warm start the U-Net from this shipped checkpoint
    #                               (a name in data/checkpoints/ or a gen.npz path)
    # the data
    data: str = 'openmoji'        # 'openmoji' (train split of the built cache),
    #                               'samples' (the committed samples), 'synthetic'
    size: int = 128               # image side in pixels (multiple of 16)
    train_limit: Optional[int] = None  # use only this many training pictures
    lines: str = 'human'          # 'human': OpenMoji's drawn line layer; 'extracted': the
    #                               blog's OpenCV recipe on the color picture
    #                               (lines.extract_best), as the blog trained
    flip: bool = True             # random horizontal flips (seeded)
    line_styles: bool = False     # restyle the line art at random (augment.restyle:
    #                               other artists' lines; updaters.LineStyleUpdater)
    line_styles_without: tuple = ()  # kinds of restyling switched off (augment.GROUPS)
    # the optimisation
    batch_size: int = 16
    iterations: int = 1000
    alpha_g: float = 1e-4         # Adam step size of the U-Net (the blog's)
    alpha_d: float = 1e-4         # Adam step size of the Ad-boss
    beta1: float = 0.9            # Adam beta1 (Chainer's default, as in the released code)
    weight_decay: float = 0.0     # the released code used 1e-5
    seed: int = 0
    # bookkeeping
    log_interval: int = 10
    snapshot_interval: int = 100
    keep_snapshots: int = 2
    preview_interval: int = 100
    n_preview: int = 8

    def __post_init__(self):
        # a config.json holds a list: the same config as the tuple written in code
        self.line_styles_without = tuple(self.line_styles_without)

    def to_dict(self):
        return asdict(self)

    @classmethod
    def from_dict(cls, d):
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)

    @property
    def adversarial(self):
        return self.adv_weight > 0


# The "balanced" and "harsh" adversarial weights of the classroom runs. Balanced keeps the
# reconstruction term in charge and lets the Ad-boss push colours; harsh makes the
# Ad-boss's verdict weigh as much as the whole reconstruction error and more.
BALANCED_ADV_WEIGHT = 0.01
HARSH_ADV_WEIGHT = 1.0

_CLASSROOM = dict(width=0.25, size=128, batch_size=8, iterations=2000, alpha_g=2e-4,
                  alpha_d=2e-4, snapshot_interval=50, preview_interval=100,
                  log_interval=10)

CONFIGS = {
    'quick': TrainConfig(
        'quick', 'tiny smoke-test run: width 1/16, 32 px, a few iterations',
        width=1 / 16, size=32, batch_size=4, iterations=6, train_limit=32,
        log_interval=1, snapshot_interval=3, preview_interval=3, n_preview=4),
    'quick_adv': TrainConfig(
        'quick_adv', 'tiny smoke-test run with the Ad-boss',
        adv_weight=BALANCED_ADV_WEIGHT, width=1 / 16, size=32, batch_size=4,
        iterations=6, train_limit=32, log_interval=1, snapshot_interval=3,
        preview_interval=3, n_preview=4),
    'classroom_l2': TrainConfig(
        'classroom_l2', 'the blog\'s first attempt on a CPU: U-Net, L2 loss only',
        **_CLASSROOM),
    'classroom_l1': TrainConfig(
        'classroom_l1', 'as classroom_l2 with L1 (PaintsChainer\'s released loss)',
        rec_loss='l1', **_CLASSROOM),
    'classroom_adv': TrainConfig(
        'classroom_adv', 'L2 + a balanced Ad-boss',
        adv_weight=BALANCED_ADV_WEIGHT, **_CLASSROOM),
    'classroom_adv_harsh': TrainConfig(
        'classroom_adv_harsh', 'L2 + a too-harsh Ad-boss',
        adv_weight=HARSH_ADV_WEIGHT, **_CLASSROOM),
    'classroom_l2_extracted': TrainConfig(
        'classroom_l2_extracted', 'as classroom_l2, trained on OpenCV-extracted lines '
        '(the blog\'s data) instead of the human line layer', lines='extracted',
        **_CLASSROOM),
    # Notebook 03's GAN lesson within a CPU budget: start from the shipped L2 U-Net (it
    # already draws the picture right) and train on with L1 + an Ad-boss. With the blog's
    # Ad-boss (colors only, one verdict) 800 steps did not change the colors visibly; the
    # patch Ad-boss, which sees the lines too, does: a weight where the hues spread and one
    # where the Ad-boss takes over; colors_only is the take-home's comparison (the patch
    # judge without the lines). Adam beta1 0.5, as GANs are usually trained.
    'classroom_gan_color': TrainConfig(
        'classroom_gan_color', 'warm start from classroom_l2, L1 + the patch Ad-boss at a '
        'weight where color appears', rec_loss='l1', adv_weight=0.3, dis='patch',
        init_from='classroom_l2', beta1=0.5, **dict(_CLASSROOM, iterations=1500)),
    'classroom_gan_harsh': TrainConfig(
        'classroom_gan_harsh', 'warm start from classroom_l2, L1 + the patch Ad-boss '
        'weighted so high that it takes over', rec_loss='l1', adv_weight=1.0, dis='patch',
        init_from='classroom_l2', beta1=0.5, **dict(_CLASSROOM, iterations=1000)),
    'classroom_gan_colors_only': TrainConfig(
        'classroom_gan_colors_only', 'as classroom_gan_harsh, but the patch Ad-boss sees the '
        'colors alone, as the blog\'s does', rec_loss='l1', adv_weight=1.0,
        dis='patch_colors', init_from='classroom_l2', beta1=0.5,
        **dict(_CLASSROOM, iterations=1000)),
    'blog_l2': TrainConfig(
        'blog_l2', 'the blog\'s scale (GPU): width 1, 128 px, batch 16, L2 only',
        width=1.0, size=128, batch_size=16, iterations=20000, alpha_g=1e-4,
        alpha_d=1e-4, snapshot_interval=1000, preview_interval=1000, log_interval=50),
    'blog_adv': TrainConfig(
        'blog_adv', 'the blog\'s scale (GPU) with the Ad-boss',
        adv_weight=BALANCED_ADV_WEIGHT, width=1.0, size=128, batch_size=16,
        iterations=20000, alpha_g=1e-4, alpha_d=1e-4, snapshot_interval=1000,
        preview_interval=1000, log_interval=50),
}


def names():
    return sorted(CONFIGS)


def get(name):
    """A copy of the named config (change it freely)."""
    if name not in CONFIGS:
        raise KeyError('unknown config %r; known: %s' % (name, ', '.join(names())))
    return dataclasses.replace(CONFIGS[name])


# ---------------------------------------------------------------------------------------
# Notebooks 04-05: color hints and the 512 px second stage (kinds 'hints' and 'stage2').
# ---------------------------------------------------------------------------------------

@dataclass
class HintTrainConfig(TrainConfig):
    """A hint U-Net (``in_ch=4``). ``init_from``: warm start from a line-only U-Net of the
    same width (a shipped checkpoint name or a path): every weight is copied, and the
    weights that read the three new hint channels start at zero, so training begins with
    exactly the line-only network and only has to learn what hints mean."""
    init_from: Optional[str] = None
    hint_recipe: str = 'classroom'     # hints.RECIPES: how training hints are simulated
    # 'blog': models.UNET(in_ch=4), the blog's model; 'fill': hint_unet.HintFillUNET, which
    # also reads a hint mask and a bucket fill of the hints (beyond the blog);
    # 'fill_shaded': the same, blending the fill under the lines (HintFillUNET(shade=True));
    # 'mask': the hint mask without the fill (an ablation step)
    model: str = 'blog'
    kind: str = 'hints'


@dataclass
class Stage2Config(TrainConfig):
    """A second-stage U-Net: 512 px line + the stage-1 colors upsampled = 4 channels.

    ``stage1`` names the frozen first stage whose outputs it learns to refine: a shipped
    checkpoint (data/checkpoints/<name>), a run folder or a gen.npz path. The stage-1
    colors are made at ``stage1_size`` px and upsampled (bicubic) to ``size``; with
    probability ``p_truth`` the downsampled-then-upsampled true colors replace them
    (PaintsChainer's 80/20 mix). ``crop``: train on random crop x crop windows of the
    ``size`` px pictures (the network is fully convolutional; a 256 px crop costs a quarter
    of a 512 px picture); None = whole pictures. ``residual``: the U-Net's output is
    added to its (upsampled) color input, and its last layer starts at zero, so stage 2
    starts as "change nothing" and learns corrections (stage2.Stage2UNET).
    """
    stage: int = 2
    stage1: str = 'classroom_hints'
    stage1_size: int = 128
    crop: Optional[int] = 256
    p_truth: float = 0.2
    residual: bool = True
    line_styles: bool = False          # restyle the 512 px line art (augment.STAGE2)
    kind: str = 'stage2'


KINDS = {'lines': TrainConfig, 'hints': HintTrainConfig, 'stage2': Stage2Config}


def kind_of(d):
    """The kind of a config dict; run folders written before configs had a ``kind`` get
    it from their fields (a stage-2 config says ``stage: 2``, a hint one ``in_ch: 4``)."""
    if d.get('kind'):
        return d['kind']
    if d.get('stage', 1) == 2:
        return 'stage2'
    return 'lines' if d.get('in_ch', 1) == 1 else 'hints'


def from_dict(d):
    """The config a ``config.json`` or a manifest entry records, of the class of its kind."""
    kind = kind_of(d)
    if kind not in KINDS:
        raise ValueError('unknown config kind %r; known: %s' % (kind, ', '.join(KINDS)))
    return KINDS[kind].from_dict(dict(d, kind=kind))


CONFIGS.update({
    'quick_hints': HintTrainConfig(
        'quick_hints', 'tiny smoke-test run of the hint U-Net (4 input channels)',
        in_ch=4, width=1 / 16, size=32, batch_size=4, iterations=6, train_limit=32,
        log_interval=1, snapshot_interval=3, preview_interval=3, n_preview=4),
    'classroom_hints_blog': HintTrainConfig(
        'classroom_hints_blog', 'the blog\'s hint U-Net: U-Net + L2 with simulated color '
        'hints (line + hint RGB = 4 channels)', in_ch=4, **dict(_CLASSROOM, iterations=3000)),
    'quick_hints_fill': HintTrainConfig(
        'quick_hints_fill', 'tiny smoke-test run of the fill-reading hint U-Net',
        in_ch=4, model='fill', hint_recipe='informative', line_styles=True, width=1 / 16,
        size=32, batch_size=4, iterations=6, train_limit=32, log_interval=1,
        snapshot_interval=3, preview_interval=3, n_preview=4),
    # warm-started from the L2 model: its colors where nobody hinted, the fill (laid under
    # the lines) where someone did; informative hints teach the gate. Line styles without
    # the stroke changes (width, faint ink, blur): in the ablation (ablation.json) those
    # cost on OpenMoji TEST and on the held-out clip art alike
    'classroom_hints': HintTrainConfig(
        'classroom_hints', 'hint U-Net beyond the blog: hint mask + bucket-fill input laid '
        'under the lines + gate, informative hints, line styles but the stroke changes, warm '
        'start from classroom_l2', in_ch=4, model='fill_shaded', hint_recipe='informative',
        line_styles=True, line_styles_without=('strokes',), init_from='classroom_l2',
        **dict(_CLASSROOM, iterations=1500, snapshot_interval=100, preview_interval=250)),
    'classroom_adv_hints': HintTrainConfig(
        'classroom_adv_hints', 'U-Net + L2 + a balanced Ad-boss, with color hints '
        '(notebook 07: does the Ad-boss make hints act far away?)', in_ch=4,
        adv_weight=BALANCED_ADV_WEIGHT, **dict(_CLASSROOM, iterations=3000)),
    'quick_stage2': Stage2Config(
        'quick_stage2', 'tiny smoke-test run of the second stage',
        in_ch=4, width=1 / 16, size=64, stage1_size=16, crop=32, rec_loss='l1',
        line_styles=True, stage1='quick_hints', batch_size=2, iterations=4, train_limit=16,
        log_interval=1, snapshot_interval=2, preview_interval=2, n_preview=2),
    'classroom_stage2': Stage2Config(
        'classroom_stage2', 'second stage at 512 px (L1, trained on 256 px crops) refining '
        'classroom_hints', in_ch=4, width=1 / 8, size=512, stage1_size=128, crop=256,
        rec_loss='l1', stage1='classroom_hints', line_styles=True, batch_size=4,
        iterations=1200, alpha_g=2e-4, snapshot_interval=50, preview_interval=100, log_interval=10,
        n_preview=4),
})


# ---------------------------------------------------------------------------------------
# The ablation of notebooks 04 and 05 (tutorial_lib.ablation measures it): one change at a
# time on the way from the blog's hint model to the shipped one, then the line styles one
# kind at a time. Same budget for all: 1,500 steps from classroom_l2, restyled lines.
# ---------------------------------------------------------------------------------------

_ABLATE = dict(_CLASSROOM, in_ch=4, init_from='classroom_l2', line_styles=True,
               hint_recipe='informative', iterations=1500, snapshot_interval=100,
               preview_interval=500)
ABLATION_HINTS = {
    'ablate_textbook': ('the blog\'s hint U-Net, textbook hints', dict(hint_recipe='classroom')),
    'ablate_informative': ('+ informative hints', dict()),
    'ablate_mask': ('+ hint mask', dict(model='mask')),
    'ablate_fill': ('+ bucket-fill input and gate', dict(model='fill')),
    'ablate_shaded': ('+ fill under the lines', dict(model='fill_shaded')),
}
ABLATION_STYLES = {
    'ablate_plain_lines': ('no line styles', dict(model='fill_shaded', line_styles=False)),
    'ablate_no_strokes': ('all but width/darkness/blur (shipped)',
                          dict(model='fill_shaded', line_styles_without=('strokes',))),
    'ablate_no_extracted': ('all but OpenCV lines',
                            dict(model='fill_shaded', line_styles_without=('extracted',))),
    'ablate_no_scale': ('all but mosaics/zoom',
                        dict(model='fill_shaded', line_styles_without=('scale',))),
    'ablate_shaded_seed1': ('every line style, another seed',
                            dict(model='fill_shaded', seed=1)),
}
CONFIGS.update({name: HintTrainConfig(name, 'ablation: ' + label, **dict(_ABLATE, **change))
                for name, (label, change) in {**ABLATION_HINTS, **ABLATION_STYLES}.items()})
