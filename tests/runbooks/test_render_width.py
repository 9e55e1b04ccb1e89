"""Output that fits (issue 14): the VM model diff as data (state in, lines out: into objects and into lists of
objects item by item, secrets as references), ARM ids by their last segments, and every line of diagnose, plan,
sweep and outcome text within 100 columns, also for the longest names Azure allows and long ARM messages."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from remediation_helpers import Rig

from runbooks.detect import diagnose
from runbooks.observe import Observation, VmRef
from runbooks.plan import ABSENT, make_plan, model_diff
from runbooks.playbook import load_playbooks
from runbooks.remediate import plan_remediation
from runbooks.render import diagnosis_text, diff_lines, plan_text
from runbooks.sweep import SweepItem, SweepReport, sweep_text
from runbooks.text import WIDTH, fit, fit_lines, short_id, table

SUB = "/subscriptions/00000000-0000-0000-0000-00000000a2a1"
NIC = SUB + "/resourceGroups/rg-nic/providers/Microsoft.Network/networkInterfaces/"
LONG_VM = "v" + "m-very-long-name" * 3 + "-0123456789abc"  # 63 characters: Azure allows 64
LONG_RG = "rg-" + "a-resource-group-with-a-long-name-" * 2 + "0123456789abcdefghi"  # 90: the most Azure allows


def _vm(data_disks: list[dict[str, Any]], nics: list[dict[str, Any]], **props: Any) -> dict[str, Any]:
    return {"id": SUB + "/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1", "name": "vm1",
            "properties": {"storageProfile": {"dataDisks": data_disks}, "networkProfile": {"networkInterfaces": nics},
                           "provisioningState": "Succeeded", **props}}


def _narrow(text: str) -> list[str]:
    return [line for line in text.splitlines() if len(line) > WIDTH]


# --- the diff as data -------------------------------------------------------------------------------------------


def test_data_disks_are_matched_by_lun_and_each_changed_leaf_is_one_entry() -> None:
    before = _vm([{"lun": 1, "createOption": "Empty", "diskSizeGB": 64},
                  {"lun": 0, "createOption": "Empty", "diskSizeGB": 32, "managedDisk": {"storageAccountType": "P"}}],
                 [])
    after = _vm([{"lun": 0, "createOption": "Attach", "diskSizeGB": 32, "managedDisk": {"storageAccountType": "S"}},
                 {"lun": 1, "createOption": "Empty", "diskSizeGB": 64}], [], provisioningState="Updating")
    assert model_diff(before, after) == [
        ("properties.storageProfile.dataDisks[lun 0].createOption", "Empty", "Attach"),
        ("properties.storageProfile.dataDisks[lun 0].managedDisk.storageAccountType", "P", "S"),
    ]  # the order of the list and the read-only provisioningState are not changes


def test_list_items_added_and_removed_are_one_entry_each_and_render_as_such() -> None:
    before = _vm([{"lun": 0, "createOption": "Empty"}, {"lun": 1, "createOption": "Empty"}], [])
    after = _vm([{"lun": 0, "createOption": "Empty"}, {"lun": 2, "createOption": "Attach",
                                                        "managedDisk": {"id": SUB + "/x"}}], [])
    diff = model_diff(before, after)
    assert diff == [("properties.storageProfile.dataDisks[lun 1]", {"lun": 1, "createOption": "Empty"}, ABSENT),
                    ("properties.storageProfile.dataDisks[lun 2]", ABSENT,
                     {"lun": 2, "createOption": "Attach", "managedDisk": {"id": SUB + "/x"}})]
    assert diff_lines(diff, "  ") == ["  properties.storageProfile.dataDisks[lun 1]: removed",
                                      "  properties.storageProfile.dataDisks[lun 2]: added"]


def test_nics_are_matched_by_id_ignoring_case_and_named_by_their_last_segment() -> None:
    before = _vm([], [{"id": NIC + "nic-a", "properties": {"primary": True}},
                      {"id": NIC + "nic-b", "properties": {"primary": False}}])
    after = _vm([], [{"id": (NIC + "NIC-A").upper(), "properties": {"primary": False}},
                     {"id": NIC + "nic-c", "properties": {"primary": True}}])
    assert model_diff(before, after) == [
        ("properties.networkProfile.networkInterfaces[nic-a].properties.primary", True, False),
        ("properties.networkProfile.networkInterfaces[nic-b]", {"id": NIC + "nic-b", "properties": {"primary": False}},
         ABSENT),
        ("properties.networkProfile.networkInterfaces[nic-c]", ABSENT, {"id": NIC + "nic-c",
                                                                       "properties": {"primary": True}}),
    ]


def test_items_whose_last_segments_collide_are_named_by_their_whole_ids() -> None:
    other = NIC.replace("rg-nic", "rg-other") + "nic-a"
    before = _vm([], [{"id": NIC + "nic-a", "properties": {"primary": True}}])
    after = _vm([], [{"id": NIC + "nic-a", "properties": {"primary": False}}, {"id": other}])
    assert diff_lines(model_diff(before, after)) == [
        "properties.networkProfile.networkInterfaces[rg-nic/…/networkInterfaces/nic-a].properties.primary:",
        "    true → false", "properties.networkProfile.networkInterfaces[rg-other/…/networkInterfaces/nic-a]: added"]
    assert model_diff(before, after) == [
        (f"properties.networkProfile.networkInterfaces[{NIC}nic-a].properties.primary", True, False),
        (f"properties.networkProfile.networkInterfaces[{other}]", ABSENT, {"id": other}),
    ]


def test_nested_lists_recurse_and_objects_without_identity_go_by_position() -> None:
    before = {"properties": {"extensions": [
        {"name": "ext", "settings": {"rules": [{"port": 22, "allow": True}, {"port": 80, "allow": True}]}}]}}
    after = {"properties": {"extensions": [
        {"name": "ext", "settings": {"rules": [{"port": 22, "allow": False}, {"port": 80, "allow": True},
                                              {"port": 443, "allow": True}]}}]}}
    assert model_diff(before, after) == [
        ("properties.extensions[ext].settings.rules[0].allow", True, False),
        ("properties.extensions[ext].settings.rules[2]", ABSENT, {"port": 443, "allow": True}),
    ]
    zones = model_diff({"zones": ["1"]}, {"zones": ["2"]})  # a list of plain values is one leaf
    assert zones == [("zones", ["1"], ["2"])]


def test_a_secret_stays_a_reference_in_the_diff_and_in_its_lines() -> None:
    before = {"properties": {"osProfile": {"adminUsername": "azureuser"}}}
    after = {"properties": {"osProfile": {"adminUsername": "azureuser",
                                          "adminPassword": {"$secret": "env:RUNBOOKS_ADMIN_PASSWORD"}}}}
    diff = model_diff(before, after)
    assert diff == [("properties.osProfile.adminPassword", ABSENT, {"$secret": "env:RUNBOOKS_ADMIN_PASSWORD"})]
    assert diff_lines(diff) == ["properties.osProfile.adminPassword: (absent) → "
                                "(secret from env:RUNBOOKS_ADMIN_PASSWORD)"]


def test_long_ids_in_diff_lines_keep_their_last_segments_and_fit() -> None:
    disk = f"{SUB}/resourceGroups/{LONG_RG}/providers/Microsoft.Compute/disks/{LONG_VM}_OsDisk_1_{'f' * 32}"
    diff = [("properties.storageProfile.osDisk.managedDisk.id", disk, ABSENT),
            ("properties.storageProfile.dataDisks[lun 0].managedDisk.id", ABSENT, SUB + "/resourceGroups/rg/"
             "providers/Microsoft.Compute/disks/d0"),
            ("properties.storageProfile.dataDisks[lun 0].createOption", "Empty", "Attach"),
            ("p." * 45 + "deep", "x" * 300, "y" * 300)]
    lines = diff_lines(diff, "        ")
    assert all(len(line) <= WIDTH for line in lines), lines
    assert "        properties.storageProfile.dataDisks[lun 0].createOption: Empty → Attach" in lines
    assert "        properties.storageProfile.dataDisks[lun 0].managedDisk.id: (absent) → rg/…/disks/d0" in lines
    assert "/subscriptions/" not in "\n".join(lines)
    # the long disk id goes under its path, cut at the front: its name stays
    at = lines.index("        properties.storageProfile.osDisk.managedDisk.id:")
    assert lines[at + 1].startswith("            …") and lines[at + 1].endswith(f"_OsDisk_1_{'f' * 32} → (absent)")
    key = "properties.osProfile.linuxConfiguration.ssh.publicKeys[/home/azureuser/.ssh/authorized_keys]"
    assert diff_lines([(key, {"path": "/home/azureuser/.ssh/authorized_keys"}, ABSENT)], "        ") == [
        f"        {key}", "            removed"]  # a path as wide as the screen: the change goes under it


# --- ids and prose ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("rid", "width", "short"), [
    (SUB + "/resourceGroups/rg-demo/providers/Microsoft.Compute/snapshots/app-01_OsDisk-b8701e29-rb44fe272e", 60,
     "rg-demo/…/snapshots/app-01_OsDisk-b8701e29-rb44fe272e"),
    (SUB + "/resourceGroups/rg-demo/providers/Microsoft.Compute/virtualMachines/app-01/extensions/bootstrap", 60,
     "rg-demo/…/virtualMachines/app-01/extensions/bootstrap"),
    (SUB + "/resourceGroups/rg-demo/providers/Microsoft.Compute/virtualMachines/app-01/extensions/bootstrap", 30,
     "rg-demo/…/extensions/bootstrap"),  # past the width the leading pairs go; the group and the name stay
    (SUB + "/resourceGroups/rg-locked/providers/Microsoft.Authorization/locks/change-freeze", 60,
     "rg-locked/…/locks/change-freeze"),
    (SUB + "/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm/providers/Microsoft.Authorization/"
     "locks/no-delete", 60, "rg/…/virtualMachines/vm/locks/no-delete"),
    (SUB + "/providers/Microsoft.MarketplaceOrdering/offerTypes/VirtualMachine/publishers/fortinet/offers/"
     "fortinet_fortigate-vm_v5/plans/fortinet_fg-vm_payg_2023/agreements/current", 88,
     "subscription/…/plans/fortinet_fg-vm_payg_2023/agreements/current"),
    ("not an id", 60, "not an id"),
])
def test_short_id_keeps_the_resource_group_and_the_last_segments(rid: str, width: int, short: str) -> None:
    assert short_id(rid, width) == short


def test_fit_wraps_with_a_hanging_indent_and_loses_no_word() -> None:
    text = "Right when the guest was prepared for imaging before the capture. " * 6 + "x" * 150
    lines = fit(text, "  - ", "    ")
    assert lines[0].startswith("  - Right") and all(line.startswith("    ") for line in lines[1:])
    assert all(len(line) <= WIDTH for line in lines)
    assert "".join(" ".join(lines).split()) == "".join(("- " + text).split())
    block = fit_lines(["short line", "  + 3. step: " + "word " * 40, "    ! " + "note " * 30]).splitlines()
    assert block[0] == "short line" and all(len(line) <= WIDTH for line in block)
    assert block[2].startswith("       word") and any(line.startswith("      note") for line in block[3:])
    command = "  az vm show --ids /subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm"
    assert fit_lines([command, "a  b"]) == command + "\na  b"  # a line that fits is left as it is


def test_a_table_keeps_its_columns_and_wraps_the_last_one_under_itself() -> None:
    rows = [("rg-alloc/web-01", "allocation-failure", "remediated", "capacity " * 30),
            (f"{LONG_RG}/{LONG_VM}", "sku-not-available", "advised", "short")]
    lines = table(("VM", "PLAYBOOK", "RESULT", "DETAIL"), rows)
    assert all(len(line) <= WIDTH for line in lines), lines
    playbook_at, detail_at = lines[0].index("PLAYBOOK"), lines[0].index("DETAIL")
    assert lines[1].index("capacity") == detail_at and lines[2].index("capacity") == detail_at
    assert _column(lines[1:], detail_at, WIDTH).startswith("".join(rows[0][3].split()))  # wrapped under itself
    assert _column(lines[1:], 0, playbook_at) == "rg-alloc/web-01" + rows[1][0]  # a long cell folds in its column


def _column(lines: list[str], start: int, end: int) -> str:
    """A table column's text, its lines joined."""
    return "".join("".join(line[start:end].split()) for line in lines)


# --- whole renderers on long inputs -----------------------------------------------------------------------------


def _long_named(obs: Observation, message: str) -> Observation:
    data = re.sub("rg-demo", LONG_RG, re.sub("app-01", LONG_VM, json.dumps(obs.to_dict()), flags=re.IGNORECASE),
                  flags=re.IGNORECASE)  # ARM may spell a resource group in capitals inside an id
    long = Observation.from_dict(json.loads(data))
    for op in long.failed_operations:
        op["message"] = message
    return long


def test_diagnosis_and_plan_of_the_longest_names_fit(rig: Rig) -> None:
    rig.arm.seed("generalized-after-capture")
    _, seen = plan_remediation(rig.az(), VmRef.parse("rg-demo/app-01"), "from-os-disk")  # reads all a plan needs
    vm_id = f"{SUB}/resourceGroups/{LONG_RG}/providers/Microsoft.Compute/virtualMachines/{LONG_VM}"
    message = (f"Operation 'start' is not allowed on VM '{LONG_VM}' since the VM is generalized. The scope "
               f"'{vm_id}' was checked; see https://aka.ms/{'x' * 120} for details.")
    obs = _long_named(seen.observation, message)
    playbooks = load_playbooks()
    long = diagnose(obs, playbooks)
    assert long.playbook is not None and long.playbook.id == "generalized-vm"

    text = diagnosis_text(long)
    assert _narrow(text) == []
    flat = "".join(text.split())
    assert f"VM{LONG_RG}/{LONG_VM}" in flat and "OperationNotAllowed" in flat and "'start'isnotallowed" in flat
    assert "/subscriptions/" not in text and f"{LONG_RG}/…/virtualMachines/{LONG_VM}" in flat  # shortened
    assert "both fit" in text and ".." not in text.replace("…", "")

    plan = make_plan(obs, long.playbook, long.playbook.scenario("from-os-disk"))
    shown = plan_text(plan)
    assert _narrow(shown) == []
    assert "/subscriptions/" not in shown
    calls = [call for step in plan.steps for call in step.calls]
    assert calls and all(call.resource_id.startswith("/subscriptions/") for call in calls)  # full ids in the plan
    assert any(call.resource_id in plan.dumps() for call in calls)
    flat = "".join(shown.split())
    assert f"DELETE{LONG_RG}/…/virtualMachines/{LONG_VM}" in flat
    assert re.search(r"dataDisks\[lun 0\]\.createOption: Empty → Attach", shown), shown


def test_sweep_text_of_long_names_and_messages_fits() -> None:
    detail = ("refused: OperationNotAllowed: Operation could not be completed as it results in exceeding approved "
              "standardDSv5Family Cores quota. " * 3)
    report = SweepReport(subscription=SUB.rsplit("/", 1)[-1], resource_group=LONG_RG, mode="remediate")
    report.items = [SweepItem(vm_id=f"{SUB}/resourceGroups/{LONG_RG}/providers/Microsoft.Compute/virtualMachines/"
                                    f"{LONG_VM}", resource_group=LONG_RG, name=LONG_VM,
                              statuses=["PowerState/running"], playbook="quota-exceeded", result="failed",
                              detail=detail, fallout=["the VM's temporary disk started empty " * 4]),
                    SweepItem(vm_id=f"{SUB}/resourceGroups/rg-alloc/providers/Microsoft.Compute/virtualMachines/"
                                    "web-01", resource_group="rg-alloc", name="web-01",
                              statuses=["PowerState/running"], playbook="allocation-failure",
                              scenario="start-again", result="remediated")]
    report.notes = ["a note that goes on and on " * 6]
    text = sweep_text(report)
    assert _narrow(text) == []
    lines = text.splitlines()
    head = next(n for n, line in enumerate(lines) if line.startswith("VM "))
    rows = lines[head + 1: next(n for n, line in enumerate(lines) if line.startswith("note: "))]
    playbook_at, detail_at = lines[head].index("PLAYBOOK"), lines[head].index("DETAIL")
    assert _column(rows, 0, playbook_at) == f"{LONG_RG}/{LONG_VM}rg-alloc/web-01"
    assert _column(rows, detail_at, WIDTH).startswith("".join(detail.split()))
    assert "start-again" in text and "".join(("a note that goes on and on " * 6).split()) in "".join(text.split())


def test_table_cells_are_one_line_and_numbers_stay() -> None:
    lines = table(("RUN", "CALLS", "DETAIL"), [("ab12cd34", 0, "first\nsecond")])
    assert lines[1].split() == ["ab12cd34", "0", "first", "second"] and table((), []) == []
