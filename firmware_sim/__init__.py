"""firmware_sim: simulated field devices that behave like Taizhou's.

Drain nodes read SWMM hydraulics of a generated network per district, smart toilets and garbage
stations follow daily rhythms, sensors are imperfect on purpose, and everything that really
happened is written down as ground truth. Simulated devices implement
:class:`telemetry_core.driver.SensorDriver`, so an edge agent reads them like real sensors.
"""

from firmware_sim._events import (
    MERGE_GAP_S,
    TruthEvent,
    TruthFileError,
    load_truth_events,
    merge_events,
    write_truth_events,
)
from firmware_sim._fleet import DEFAULT_NODES_PER_DISTRICT, make_fleet
from firmware_sim._netfile import write_network
from firmware_sim._runner import OUTPUT_FORMATS, RunSummary, parse_duration, run_to_files
from firmware_sim._scenario import Scenario, ScenarioInfo, list_scenarios, load_scenario
from firmware_sim._scoring import TIERS, LabelScore, ScoredAlert, score_alerts
from firmware_sim._simulation import FleetSimulation, SimulatedDriver
from firmware_sim._truth import GroundTruthRecord, write_ground_truth
from firmware_sim.errors import FleetError, HydraulicsError, ScenarioError, SimError

__all__ = [
    "DEFAULT_NODES_PER_DISTRICT",
    "MERGE_GAP_S",
    "OUTPUT_FORMATS",
    "TIERS",
    "FleetError",
    "FleetSimulation",
    "GroundTruthRecord",
    "HydraulicsError",
    "LabelScore",
    "RunSummary",
    "Scenario",
    "ScenarioError",
    "ScenarioInfo",
    "ScoredAlert",
    "SimError",
    "SimulatedDriver",
    "TruthEvent",
    "TruthFileError",
    "list_scenarios",
    "load_scenario",
    "load_truth_events",
    "make_fleet",
    "merge_events",
    "parse_duration",
    "run_to_files",
    "score_alerts",
    "write_ground_truth",
    "write_network",
    "write_truth_events",
]
