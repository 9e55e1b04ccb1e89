"""Marketplace plans and legal terms of a refused VM create (the MARKET_TERMS and MARKET_PLAN families).

A VM whose create was refused does not exist; its activity log keeps the request's image reference, plan and
location (``observe.REQUEST_EVIDENCE``). The ``marketplace`` fact reads, for that request, the image
(``virtual_machine_images``: whether it is sold under a plan, and which) and the legal terms of the plan involved
(``marketplace_agreements.get``), into ``Observation.resources`` under their ids. ``condition`` answers the
``marketplace`` signals; ``advise`` is the ``recommend: plan`` advice: the exact plan block to use, or to drop.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from azure.core.exceptions import ResourceNotFoundError

from runbooks.azure import agreement_id, agreement_parts, get_agreement
from runbooks.observe import Observation, _d, dotted, refused_create

if TYPE_CHECKING:
    from runbooks.azure import Azure

PLAN_KEYS = ("name", "product", "publisher")
_IMAGE_MARK = "/artifacttypes/vmimage/"


def _version_key(version: str) -> tuple[int, ...]:
    """A Marketplace image version (``22.04.202401150``) as numbers, so 10.0 sorts after 9.1."""
    return tuple(int(p) if p.isdigit() else -1 for p in version.split("."))


def _plan(value: Any) -> dict[str, str] | None:
    if not isinstance(value, dict) or not any(value.get(k) for k in PLAN_KEYS):
        return None
    return {k: str(value.get(k) or "") for k in PLAN_KEYS}


def _urn(ref: dict[str, Any]) -> str:
    return ":".join(str(ref.get(k) or "") for k in ("publisher", "offer", "sku", "version"))


def read_marketplace(az: Azure, obs: Observation) -> None:
    """The image of the refused create and the legal terms of its plan (the request's plan, else the image's)."""
    op = refused_create(obs)
    ref = (op or {}).get("requested_image") or {}
    if op is None or not isinstance(ref, dict) or not all(ref.get(k) for k in ("publisher", "offer", "sku")):
        return  # no refused create from a Marketplace image (a custom image has an id, not a plan of its own)
    location = str(op.get("requested_location") or obs.location).replace(" ", "").lower()
    images = az.compute.virtual_machine_images
    version = str(ref.get("version") or "latest")
    image: dict[str, Any] | None = None
    try:
        if version.lower() == "latest":
            versions = [v.name for v in images.list(location, ref["publisher"], ref["offer"], ref["sku"])]
            version = max(versions, key=_version_key) if versions else version
        image = _d(images.get(location, ref["publisher"], ref["offer"], ref["sku"], version))
    except ResourceNotFoundError:
        image = None
    if image is not None:
        obs.resources[str(image.get("id") or f"{_IMAGE_MARK}{_urn(ref)}").lower()] = image
    plan = _plan(op.get("requested_plan")) or _image_plan(image)
    if plan is not None:
        terms = get_agreement(az, plan["publisher"], plan["product"], plan["name"])
        if terms is not None:
            obs.resources[agreement_id(obs.subscription, plan["publisher"], plan["product"], plan["name"]).lower()] \
                = terms


def _image_plan(image: dict[str, Any] | None) -> dict[str, str] | None:
    """The plan an image is sold under (``properties.plan`` of a virtualMachineImages GET), or None."""
    return _plan(dotted(image or {}, "properties.plan") or (image or {}).get("plan"))


def image_of(obs: Observation) -> dict[str, Any] | None:
    return next((v for k, v in obs.resources.items() if _IMAGE_MARK in k and v is not None), None)


def terms_of(obs: Observation) -> tuple[str, dict[str, Any]] | None:
    """(id, JSON) of the legal terms the observation read (None: no plan is involved, or unknown)."""
    return next(((k, v) for k, v in obs.resources.items() if agreement_parts(k) and v is not None), None)


def _terms_line(terms: dict[str, Any]) -> str:
    props = terms.get("properties") or {}
    return (f"{props.get('publisher')} / {props.get('product')} / plan {props.get('plan')}: accepted "
            f"{str(bool(props.get('accepted'))).lower()} on this subscription "
            f"(licence: {props.get('licenseTextLink')})")


def plan_check(obs: Observation) -> dict[str, Any]:
    """The refused create's plan against its image: ``case`` (``plan-missing``, ``plan-not-needed``,
    ``plan-differs``, ``matches``, or ``unknown`` when the image could not be read), the plan the request gave, the
    image's plan and the image's URN."""
    op = refused_create(obs) or {}
    ref = op.get("requested_image") or {}
    given = _plan(op.get("requested_plan"))
    image = image_of(obs)
    out: dict[str, Any] = {"image": _urn(ref) if isinstance(ref, dict) else "", "given": given, "wanted": None}
    if image is None:
        return {**out, "case": "unknown"}
    wanted = _image_plan(image)
    out["wanted"] = wanted
    if wanted and not given:
        return {**out, "case": "plan-missing"}
    if given and not wanted:
        return {**out, "case": "plan-not-needed"}
    if given and wanted and any(given[k].lower() != wanted[k].lower() for k in PLAN_KEYS):
        differs = [k for k in PLAN_KEYS if given[k].lower() != wanted[k].lower()]
        return {**out, "case": "plan-differs", "differs": differs}
    return {**out, "case": "matches"}


def condition(obs: Observation, name: str) -> tuple[bool, str]:
    """Whether a ``marketplace`` signal's condition holds, and the line of evidence."""
    if refused_create(obs) is None:
        return False, "no refused create of this VM in the activity log" if obs.vm is None else \
            "the VM exists: its create was not refused"
    if name.startswith("terms-"):
        found = terms_of(obs)
        if found is None:
            return False, "no Marketplace plan's legal terms are involved in the refused create"
        accepted = bool(dotted(found[1], "properties.accepted"))
        return accepted == (name == "terms-accepted"), f"terms of {_terms_line(found[1])}"
    check = plan_check(obs)
    case = check["case"]
    holds = case == name or (name == "plan-mismatch" and case in ("plan-missing", "plan-not-needed", "plan-differs"))
    return holds, _plan_line(check)


def _block(plan: dict[str, str] | None) -> str:
    return json.dumps({"plan": plan}, separators=(", ", ": ")) if plan else "(none)"


def _plan_line(check: dict[str, Any]) -> str:
    case, image, given, wanted = check["case"], check["image"], check["given"], check["wanted"]
    if case == "unknown":
        return f"image {image} could not be read: the plan it needs is unknown"
    if case == "plan-missing":
        return f"image {image} is sold under a plan and the request gave none"
    if case == "plan-not-needed":
        return f"image {image} has no plan and the request gave {_block(given)}"
    if case == "plan-differs":
        what = ", ".join(f"{k} {given[k]!r} (the image's: {wanted[k]!r})" for k in check["differs"])
        return f"the request's plan for image {image} differs: {what}"
    return f"the request's plan matches image {image}: {_block(given)}"


def advise(obs: Observation) -> dict[str, Any]:
    """``recommend: plan``: the exact fix of the VM model's plan block, as lines and data (nothing is written)."""
    check = plan_check(obs)
    case, wanted = check["case"], check["wanted"]
    lines = [_plan_line(check)]
    if case in ("plan-missing", "plan-differs"):
        lines.append(f"fix: put this plan block at the top level of the VM's model and deploy again: {_block(wanted)}")
    elif case == "plan-not-needed":
        lines.append("fix: remove the plan block from the VM's model and deploy again (the image is not sold under a "
                     "plan)")
    elif case == "unknown":
        lines.append("fix: check the image reference (publisher, offer, sku, version) of the VM's model first")
    found = terms_of(obs)
    if found is not None and wanted and not dotted(found[1], "properties.accepted"):
        lines.append(f"then: the legal terms of the image's plan are not accepted on this subscription yet ("
                     f"{_terms_line(found[1])}); accept them before deploying (playbook marketplace-terms)")
    return {"lines": lines, "top": None, "data": {"kind": "plan", **check,
                                                  "fix": {"plan-missing": "add", "plan-differs": "replace",
                                                          "plan-not-needed": "remove"}.get(case)}}
