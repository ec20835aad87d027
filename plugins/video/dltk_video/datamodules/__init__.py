"""Behaviour datamodules, one module per source.

- :mod:`~dltk_video.datamodules.base`: :class:`FrameWindowDataModule`, per-frame features of whole
  recordings cut into windows (split into segments, standardised, stitched back per frame);
- :mod:`~dltk_video.datamodules.pose`: :class:`PoseBehaviorDataModule`, pose tracks -> features;
- :mod:`~dltk_video.datamodules.sturman`: the Sturman et al. 2020 open-field test (rearing);
- :mod:`~dltk_video.datamodules.ethome`: ethome social interaction;
- :mod:`~dltk_video.datamodules.pose_files`: your own pose files and annotations;
- raw videos: :class:`dltk_video.video_datamodules.VideoBehaviorDataModule`.

Frame evaluation lives in :mod:`dltk_video.evaluation`, file prediction in
:mod:`dltk_video.prediction`. The classes are importable (and recorded in configs) as
``dltk_video.datamodules.<Class>``.
"""

from dltk_video.datamodules.base import TARGET_NAME, FrameWindowDataModule, Segment, expand_paths
from dltk_video.datamodules.ethome import EthomeSocialDataModule
from dltk_video.datamodules.pose import PoseBehaviorDataModule, mirror_track
from dltk_video.datamodules.pose_files import PoseFilesDataModule
from dltk_video.datamodules.sturman import SturmanOFTDataModule

__all__ = ["TARGET_NAME", "EthomeSocialDataModule", "FrameWindowDataModule", "PoseBehaviorDataModule",
           "PoseFilesDataModule", "Segment", "SturmanOFTDataModule", "expand_paths", "mirror_track"]
