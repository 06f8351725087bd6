"""Executable adapter conformance suites: subclass one and provide its fixture."""

from runlane.testing.conformance.lane_suite import LaneConformance
from runlane.testing.conformance.storage_suite import StorageConformance
from runlane.testing.conformance.transport_suite import TransportConformance

__all__ = ["LaneConformance", "StorageConformance", "TransportConformance"]
