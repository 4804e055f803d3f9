"""POST / PUT / PATCH (WebserviceRequest::saveEntityFromXml, reference §2.5): the body read into the object as PHP
fills it, validated, then handed to the resource's own save (resources/, through HOOKS). Mixed into ShopSimulator.
"""

from __future__ import annotations

from xml.etree import ElementTree as ET

from .php import VALIDATORS, html_escaped, mysql_number, php_int, php_truthy
from .protocol import Ctx, Response, WsError
from .render import Entity, records_body, xml_document
from .resources import HOOKS
from .shopdata import Field, Resource


class Writes:
    def save(self, ctx: Ctx, res: Resource | None) -> Response:
        try:
            root = ET.fromstring(ctx.body.encode("utf-8"))
        except ET.ParseError as error:
            if "unbound prefix" in str(error):
                # libxml only warns about an undeclared prefix (e.g. xlink:href fed back without the root's
                # xmlns:xlink); the warning becomes a webservice error and nothing is saved (§2.6).
                raise WsError(
                    500, 3, f"[PHP Warning #2] SimpleXMLElement::__construct(): namespace error : Namespace prefix is not defined ({error})"
                ) from None
            raise WsError(500, 127, f"XML error : {error}\nXML length : {len(ctx.body)}\nOriginal XML : {ctx.body}") from None
        elements = [child for child in root if isinstance(child.tag, str) and not child.tag.startswith("{")]
        ids = [php_int(text) for text in (_child_text(e, "id") for e in elements) if text not in (None, "")]
        if ctx.method in ("PUT", "PATCH"):
            if len(set(ids)) != len(ids):
                raise WsError(400, 89, "id is duplicate in request")
            if len(elements) != len(ids):
                raise WsError(400, 90, "id is required when modifying a resource")  # recorded: order_carrier_put_without_id
        elif ids:
            # Recorded: post_to_resource_id_without_ps_method (a plain POST to /order_carriers/5 with <id>).
            raise WsError(400, 91, "id is forbidden when adding a new resource")
        if res is None or ctx.method not in res.methods:
            # Simulator choice: a write the simulator does not model answers 501 code 124 (the core's "not
            # implemented" answer) rather than pretending.
            raise WsError(501, 124, f"Simulator: {ctx.method} on the {ctx.resource!r} resource is not simulated")
        saved = [self._save_entity(ctx, res, element) for element in elements]  # undocumented multi-entity loop
        status = 201 if ctx.method == "POST" else 200
        out = self.output(ctx)
        if not saved:  # an empty <prestashop/>: nothing saved, the core answers the empty node
            return self.ok(ctx, status, "[]" if ctx.json else xml_document(""))
        return self.ok(ctx, status, records_body(out, res, saved, "full", single=True))

    def _save_entity(self, ctx: Ctx, res: Resource, element) -> Entity:
        """The object as PHP fills it: loaded (PUT/PATCH) then every field of the body as a string; a PUT resets
        what the body lacks to null (§2.5); setters run as they are met (§5.3: current_state before
        shipping_number)."""
        hooks = HOOKS[res.name]
        existing = None
        if ctx.method != "POST":
            existing = self._find(res, php_int(_child_text(element, "id")))
            if existing is None:
                raise WsError(404, 92, "Invalid ID")  # recorded: order_carrier_404_patch
        assigned: dict = {}
        for f in res.fields:
            present = _child_text(element, f.name)
            if present is not None and f.kind != "ml":
                if f.getter and not f.setter:
                    raise WsError(400, 93, f'parameter "{f.name}" not writable. Please remove this attribute of this XML')
                if f.setter:
                    hooks.setters[f.name](self, existing, present)
                else:
                    assigned[f.name] = present
            elif ctx.method == "PATCH" or f.getter:
                continue  # PATCH: only the fields in the body
            elif f.required and f.kind != "ml":
                raise WsError(400, 41, f'parameter "{f.name}" required')  # recorded: order_carrier_put_partial
            elif f.kind != "ml":
                assigned[f.name] = None  # PUT is a full replacement: omitted non-required fields are reset
        if existing is None:
            obj = {f.name: None for f in res.fields if not f.getter}
        else:  # loaded, as a setter left it
            obj = {name: value for name, value in self.entity(res, existing).values.items() if name not in hooks.getters}
        obj.update(assigned)
        self._validate(res, obj)
        record = hooks.save(self, ctx, existing, obj)
        return self.entity(res, record, values=obj)

    def _validate(self, res: Resource, obj: dict) -> None:
        """ObjectModel::validateFields: the first failing field, in definition order (code 85); within a field,
        ObjectModel::validateField checks the size (Tools::strlen: characters) before the validator. On 8.x the
        message goes through the translator, which escapes it (recorded: "OrderCarrier-&gt;tracking_number");
        1.7 shows "->" (reference §4.7)."""
        for f in res.fields:
            if f.name == "id" or f.getter or f.kind == "ml":
                continue
            value = obj.get(f.name)
            text = "" if value is None else str(value)
            prop = self._property(res, f.name)
            size, validate = f.size_in(self.version_tuple), f.validate_in(self.version_tuple)
            if f.required and text == "":
                raise WsError(400, 85, f'Validation error: "Property {prop} is empty"')
            if text == "":
                continue
            if size and len(text) > size:
                # The 1.7+ wording (ObjectModel::validateField, core source; not recorded).
                raise WsError(
                    400,
                    85,
                    f'Validation error: "The length of property {prop} is currently {len(text)} chars. It must be between 0 and {size} chars."',
                )
            if validate and not VALIDATORS[validate](text):
                raise WsError(400, 85, f'Validation error: "Property {prop} is not valid"')

    def _property(self, res: Resource, name: str) -> str:
        prop = f"{res.class_name}->{name}"
        return html_escaped(prop) if self.version_tuple >= (8,) else prop

    def _stored(self, f: Field, value):
        """What MySQL keeps: ints, decimals at their scale, a date ("now" when reset, §2.5), a string cut to its
        column (recorded: a 65-character tracking number keeps 64, a 17-character token 12)."""
        if f.kind in ("int", "bool", "id"):
            return php_int(value) if value not in (None, "") else 0
        if f.kind == "float":
            return f"{mysql_number(value if value is not None else 0):.{f.decimals}f}"
        if f.kind == "date":
            return value if value not in (None, "") else self.now()
        text = "" if value is None else str(value)
        return text[: f.column] if f.column else text

    def _row(self, res: Resource, obj: dict) -> dict:
        return {f.name: self._stored(f, obj.get(f.name)) for f in res.fields if f.name != "id" and not f.getter}

    def _added(self, res: Resource, obj: dict, record: dict) -> dict:
        """ObjectModel::add(): the new id (a string, from Insert_ID) and the dates it sets, into the object
        (recorded: customer_thread_post answers "id":"1"; §3.2: date_add cannot be back-dated)."""
        obj["id"] = str(record["id"])
        for name in ("date_add", "date_upd"):
            if name in obj:
                obj[name] = record[name]
        return record

    @staticmethod
    def _sendemail(ctx: Ctx) -> bool:
        """§2.4: sendemail is evaluated as a PHP boolean."""
        value = ctx.params.get("sendemail")
        return php_truthy(value) if isinstance(value, str) else bool(value)

    def _mails_go(self, ctx: Ctx) -> bool:
        # A 500_after_commit fault stands for a mail that failed after the commit (§5.4): no mail logged.
        return self._sendemail(ctx) and not (ctx.fault and ctx.fault["kind"] == "500_after_commit")


def _child_text(element, name: str) -> str | None:
    """(string) $element->name in SimpleXML: the element's own text (CDATA included), verbatim."""
    for child in element:
        if child.tag == name:
            return (child.text or "") + "".join(grand.tail or "" for grand in child)
    return None
