"""Python clients for the okpose service: ``from clients import PoseClient, AsyncPoseClient``."""

from clients.api import AsyncPoseClient, FrameResult, Person, PoseClient, PoseServiceError, StreamMessage

__all__ = ["AsyncPoseClient", "FrameResult", "Person", "PoseClient", "PoseServiceError", "StreamMessage"]
