"""Resource Health availability statuses of VMs, through the real SDK (azure-mgmt-resourcehealth)."""

from __future__ import annotations

import pytest
from armsim_env import Env
from azure.core.exceptions import ResourceNotFoundError

from armsim import ArmSim


def _uri(arm: ArmSim, rg: str, name: str) -> str:
    return f"subscriptions/{arm.subscription_id}/resourceGroups/{rg}/providers/Microsoft.Compute/virtualMachines/{name}"


def test_current_status_follows_the_vm_and_history_lists_events_with_their_article(arm: ArmSim, env: Env) -> None:
    env.rg("rg")
    env.compute.virtual_machines.begin_create_or_update("rg", "vm1", env.vm_body("rg", "vm1")).result()
    health = arm.health_client(retry_total=0)
    current = health.availability_statuses.get_by_resource(_uri(arm, "rg", "vm1"))
    assert current.name == "current" and current.properties.availability_state == "Available"
    arm.health_event(f"/{_uri(arm, 'rg', 'vm1')}", "VMA_RCA_Hardware_NodeReboot_Disk_Failure", minutes_ago=90,
                     duration_minutes=12, title="Unavailable", summary="The host rebooted after a disk failure")
    statuses = list(health.availability_statuses.list(_uri(arm, "rg", "vm1")))
    assert statuses[0].name == "current" and len(statuses) == 2
    past = statuses[1].properties
    assert (past.availability_state, past.article_id, past.context) == (
        "Unavailable", "VMA_RCA_Hardware_NodeReboot_Disk_Failure", "Platform Initiated")
    assert past.occured_time < past.resolution_eta  # resolved 12 minutes later
    env.compute.virtual_machines.begin_deallocate("rg", "vm1").result()
    now = health.availability_statuses.get_by_resource(_uri(arm, "rg", "vm1")).properties
    assert (now.availability_state, now.reason_type) == ("Unavailable", "Customer Initiated")


def test_an_event_still_going_on_is_the_current_status(arm: ArmSim, env: Env) -> None:
    env.rg("rg")
    env.compute.virtual_machines.begin_create_or_update("rg", "vm1", env.vm_body("rg", "vm1")).result()
    arm.health_event(f"/{_uri(arm, 'rg', 'vm1')}", "VMA_RCA_Software_NodeCrash_GuestOS_Windows_noend",
                     duration_minutes=None, context="Platform Initiated")
    current = arm.health_client(retry_total=0).availability_statuses.get_by_resource(_uri(arm, "rg", "vm1"))
    assert current.properties.availability_state == "Unavailable"
    assert current.properties.article_id == "VMA_RCA_Software_NodeCrash_GuestOS_Windows_noend"


def test_a_missing_vm_is_not_found(arm: ArmSim, env: Env) -> None:
    env.rg("rg")
    with pytest.raises(ResourceNotFoundError) as e:
        arm.health_client(retry_total=0).availability_statuses.get_by_resource(_uri(arm, "rg", "nope"))
    assert e.value.error.code == "ResourceNotFound"
    with pytest.raises(Exception, match="No VM"):
        arm.health_event(f"/{_uri(arm, 'rg', 'nope')}", "VMA_RCA_Generic_NodeReboot")
