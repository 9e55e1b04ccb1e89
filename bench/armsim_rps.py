"""How many requests per second armsim serves to the real Azure SDK over HTTPS (loopback only).

    python bench/armsim_rps.py [--seconds 2]

Three workloads, each for a bounded time: GET one VM, one list_all(status_only) page of 1000 VMs,
and a VM PUT + polling to completion (PATCH-free create/update cycle). Reported, not asserted.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from armsim import ArmSim


def measure(name: str, seconds: float, arm: ArmSim, fn: Callable[[], None]) -> None:
    start_seq, t0, calls = arm.last_request, time.perf_counter(), 0
    while time.perf_counter() - t0 < seconds:
        fn()
        calls += 1
    elapsed = time.perf_counter() - t0
    requests = arm.last_request - start_seq
    print(f"{name:<28} {requests / elapsed:8.0f} requests/s  ({calls / elapsed:7.1f} calls/s, "
          f"{requests} requests in {elapsed:.1f} s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=2.0, help="duration of each workload")
    args = parser.parse_args()
    with ArmSim(host="127.0.0.1", latency_scale=0.0001, throttling=False) as arm:
        arm.seed("fleet", vms=1000, resource_groups=4, generalized_fraction=0.0)
        compute = arm.compute_client(retry_total=0)
        vm = next(iter(compute.virtual_machines.list("rg-fleet-000")))
        measure("GET virtual machine", args.seconds, arm, lambda: compute.virtual_machines.get("rg-fleet-000", vm.name))
        measure("list_all page (1000 VMs)", args.seconds, arm,
                lambda: next(compute.virtual_machines.list_all(status_only="true").by_page()).__next__() and None)
        counter = iter(range(10**9))
        body = compute.virtual_machines.get("rg-fleet-000", vm.name).as_dict()
        nic = body["properties"]["networkProfile"]["networkInterfaces"][0]["id"]
        net = arm.network_client(retry_total=0)
        subnet = net.network_interfaces.get("rg-fleet-000", nic.rsplit("/", 1)[-1]).ip_configurations[0].subnet.id

        def put_and_poll() -> None:
            name = f"bench-{next(counter)}"
            nic_id = net.network_interfaces.begin_create_or_update("rg-fleet-000", f"{name}-nic", {
                "location": "eastus", "properties": {"ipConfigurations": [
                    {"name": "ip", "properties": {"subnet": {"id": subnet}}}]}}).result().id
            compute.virtual_machines.begin_create_or_update("rg-fleet-000", name, {
                "location": "eastus", "properties": {
                    "hardwareProfile": {"vmSize": "Standard_B2s"},
                    "storageProfile": {"imageReference": {"publisher": "Canonical", "offer": "ubuntu-24_04-lts",
                                                          "sku": "server", "version": "latest"},
                                       "osDisk": {"createOption": "FromImage"}},
                    "osProfile": {"computerName": name, "adminUsername": "u", "adminPassword": "Bench-Passw0rd!"},
                    "networkProfile": {"networkInterfaces": [{"id": nic_id}]}}}).result()

        measure("NIC + VM PUT and poll", args.seconds, arm, put_and_poll)


if __name__ == "__main__":
    main()
