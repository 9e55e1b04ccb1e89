"""Marketplace (platform) VM images: ``virtualMachineImages`` get/list and the checks a VM create from an
``imageReference`` {publisher, offer, sku, version} meets, in Azure's order:

    image unknown (publisher armsim lists)     → 404 PlatformImageNotFound
    image has a plan, the VM gives none         → 400 VMMarketplaceInvalidInput (plan required)
    the VM gives a plan, the image has none     → 400 VMMarketplaceInvalidInput (plan not needed)
    plan name/product/publisher differ          → 400 VMMarketplaceInvalidInput (purchase information)
    terms of the plan not accepted              → 400 ResourcePurchaseValidationFailed

The catalog is static and the same in every region. armsim's catalog is partial: an image of a publisher it does
not list is taken on trust (no plan), so worlds seeded with other images keep working.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from armsim.compute import exceptions as cx
from armsim.errors import ArmError, NotFound
from armsim.http import ArmRequest, ArmResponse, ok
from armsim.state import World

if TYPE_CHECKING:
    from armsim.state import Subscription


@dataclass(frozen=True)
class PlatformImage:
    publisher: str
    offer: str
    sku: str
    versions: tuple[str, ...]  # oldest first
    os_type: str = "Linux"
    hyper_v_generation: str = "V2"
    size_gb: int = 30
    plan: bool = False  # a third-party image: its plan is {name: sku, product: offer, publisher}

    @property
    def plan_block(self) -> dict[str, str] | None:
        return {"name": self.sku, "product": self.offer, "publisher": self.publisher} if self.plan else None


CATALOG: tuple[PlatformImage, ...] = (
    PlatformImage("Canonical", "ubuntu-24_04-lts", "server", ("24.04.202409120", "24.04.202502210")),
    PlatformImage("Canonical", "0001-com-ubuntu-server-jammy", "22_04-lts-gen2",
                  ("22.04.202401010", "22.04.202502130")),
    PlatformImage("MicrosoftWindowsServer", "WindowsServer", "2022-datacenter-azure-edition",
                  ("20348.2849.241106", "20348.3207.250210"), os_type="Windows", size_gb=127),
    # third-party appliances sold with a plan (their terms must be accepted once per subscription)
    PlatformImage("fortinet", "fortinet_fortigate-vm_v5", "fortinet_fg-vm_payg_2023", ("7.4.5", "7.6.1"), plan=True,
                  size_gb=2, hyper_v_generation="V1"),
    PlatformImage("paloaltonetworks", "vmseries-flex", "byol", ("11.1.4", "11.2.3"), plan=True, size_gb=60,
                  hyper_v_generation="V1"),
    PlatformImage("cisco", "cisco-c8000v-byol", "17_15_01a-byol", ("17.15.0120240903",), plan=True, size_gb=16,
                  hyper_v_generation="V1"),
)
LISTED_PUBLISHERS = frozenset(i.publisher.lower() for i in CATALOG if i.plan)  # armsim knows all of their images


def find(publisher: str, offer: str, sku: str) -> PlatformImage | None:
    key = (publisher.lower(), offer.lower(), sku.lower())
    return next((i for i in CATALOG if (i.publisher.lower(), i.offer.lower(), i.sku.lower()) == key), None)


def find_plan(publisher: str, product: str, plan: str) -> PlatformImage | None:
    """The image sold under a plan (the MarketplaceOrdering agreement's key)."""
    image = find(publisher, product, plan)
    return image if image is not None and image.plan else None


def _version(image: PlatformImage, version: str) -> str | None:
    if version.lower() == "latest":
        return image.versions[-1]
    return next((v for v in image.versions if v == version), None)


def platform_image_not_found(ref: dict[str, Any]) -> ArmError:
    # Wording from hashicorp/packer#10600 and clear-code/firefox-support-common#31 (404, target imageReference)
    urn = ":".join(str(ref.get(k, "")) for k in ("publisher", "offer", "sku", "version"))
    return ArmError(f"The platform image '{urn}' is not available. Verify that all fields in the storage profile are "
                    "correct. For more details about storage profile information, please refer to "
                    "https://aka.ms/storageprofile", code="PlatformImageNotFound", status=404, target="imageReference")


def resolve(ref: dict[str, Any]) -> PlatformImage | None:
    """The catalog image an imageReference names; None when armsim takes it on trust. Raises 404 for an image of a
    publisher armsim lists that it does not have."""
    publisher, offer, sku = (str(ref.get(k) or "") for k in ("publisher", "offer", "sku"))
    image = find(publisher, offer, sku)
    version = str(ref.get("version") or "latest")
    if image is not None and _version(image, version) is not None:
        return image
    if image is not None or publisher.lower() in LISTED_PUBLISHERS:
        raise platform_image_not_found(ref)
    return None


def check_create(sub: Subscription, vm_id: str, ref: dict[str, Any], vm_plan: dict[str, Any] | None,
                 ) -> PlatformImage | None:
    """A create's marketplace checks (see the module docstring); returns the catalog image (None: on trust)."""
    image = resolve(ref)
    if image is None:
        return None
    wanted = image.plan_block
    if wanted and not vm_plan:
        raise cx.plan_required(vm_id)
    if vm_plan and not wanted:
        raise cx.plan_not_needed()
    if wanted and vm_plan:
        if any(str(wanted[k]).lower() != str(vm_plan.get(k, "")).lower() for k in ("name", "publisher", "product")):
            raise cx.plan_mismatch()
        if not sub.marketplace.accepted(image.publisher, image.offer, image.sku):
            raise terms_not_accepted(sub.id)
    return image


def terms_not_accepted(subscription: str) -> ArmError:
    # Wording (typo "accpet" included) as quoted by hashicorp/terraform-provider-azurerm#4305 and
    # Azure/terraform-azurerm-compute#123: a synchronous 400 on the VM PUT.
    return ArmError(
        "User failed validation to purchase resources. Error message: 'Legal terms have not been accepted for this "
        f"item on this subscription: '{subscription}'. To accept legal terms using PowerShell, please use "
        "Get-AzureRmMarketplaceTerms and Set-AzureRmMarketplaceTerms API(https://go.microsoft.com/fwlink/?linkid="
        "862451), to accept the terms using Azure CLI, please use az vm image accpet-terms (https://go.microsoft.com/"
        "fwlink/?linkid=2110637) or deploy via the Azure portal to accept the terms'",
        code="ResourcePurchaseValidationFailed", status=400)


# --- virtualMachineImages -------------------------------------------------------------------------------------


def _image_id(subscription: str, location: str, image: PlatformImage, version: str) -> str:
    return (f"/Subscriptions/{subscription}/Providers/Microsoft.Compute/Locations/{location}/Publishers/"
            f"{image.publisher}/ArtifactTypes/VMImage/Offers/{image.offer}/Skus/{image.sku}/Versions/{version}")


def _artifact_not_found() -> NotFound:
    # wording from memory (az vm image show of a missing version), not verified
    return NotFound("Artifact: VMImage was not found.")


def get_image(world: World, req: ArmRequest, subscriptionId: str, location: str, publisherName: str, offer: str,
              skus: str, version: str) -> ArmResponse:
    world.sub(subscriptionId)
    image = find(publisherName, offer, skus)
    found = _version(image, version) if image is not None and version.lower() != "latest" else None
    if image is None or found is None:
        raise _artifact_not_found()
    props: dict[str, Any] = {
        "hyperVGeneration": image.hyper_v_generation, "architecture": "x64", "replicaType": "Unmanaged",
        "osDiskImage": {"operatingSystem": image.os_type, "sizeInGb": image.size_gb}, "dataDiskImages": [],
        "automaticOSUpgradeProperties": {"automaticOSUpgradeSupported": False},
        "disallowed": {"vmDiskType": "None"}, "imageDeprecationStatus": {"imageState": "Active"},
    }
    if image.plan_block:
        props["plan"] = image.plan_block
    return ok({"name": found, "location": location.lower(), "properties": props,
               "id": _image_id(subscriptionId, location.lower(), image, found)})


def list_images(world: World, req: ArmRequest, subscriptionId: str, location: str, publisherName: str, offer: str,
                skus: str) -> ArmResponse:
    world.sub(subscriptionId)
    image = find(publisherName, offer, skus)
    if image is None:
        raise _artifact_not_found()
    return ok([{"name": v, "location": location.lower(), "id": _image_id(subscriptionId, location.lower(), image, v)}
               for v in image.versions])
