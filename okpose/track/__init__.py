"""PoseFlow-style multi-person tracking: matching cascade, motion model, appearance, skip-frame follow."""

from okpose.track.tracker import PoseFlowTracker, Track, TrackerConfig

__all__ = ["PoseFlowTracker", "Track", "TrackerConfig"]
