"""POST / PUT / PATCH (WebserviceRequest::saveEntityFromXml, reference §2.5) and what each resource's save does in
the shop. Mixed into ShopSimulator.

What moves `orders.date_upd`, measured on 8.1.2 (date_upd.md) and kept for every version (the classes are the
same in 1.7 and 9.x, reference §3.2, §3.3): a state change (rows 1-3) and a PATCH of the order itself (row 8) do;
an order_carriers write (rows 5-7: PUT, PATCH, POST + ps_method) and any message or thread (rows 11-15) do not.
"""
from __future__ import annotations

from xml.etree import ElementTree as ET

from .php import VALIDATORS, html_escaped, mysql_number, php_int, php_truthy
from .protocol import Ctx, PhpFatal, Response, WsError
from .render import Entity, records_body, xml_document
from .shopdata import RESOURCES, Field, Resource


class Writes:
    def save(self, ctx: Ctx, res: Resource | None) -> Response:
        try:
            root = ET.fromstring(ctx.body.encode("utf-8"))
        except ET.ParseError as error:
            if "unbound prefix" in str(error):
                # libxml only warns about an undeclared prefix (e.g. xlink:href fed back without the root's
                # xmlns:xlink); the warning becomes a webservice error and nothing is saved (§2.6).
                raise WsError(500, 3, "[PHP Warning #2] SimpleXMLElement::__construct(): namespace error : "
                                      f"Namespace prefix is not defined ({error})")
            raise WsError(500, 127, f"XML error : {error}\nXML length : {len(ctx.body)}\nOriginal XML : {ctx.body}")
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
                    self._order_setter(existing, f, present)
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
            obj = {name: value for name, value in self.entity(res, existing).values.items() if name != "shipping_number"}
        obj.update(assigned)
        self._validate(res, obj)
        saver = {"order_histories": self._save_history, "order_carriers": self._save_order_carrier,
                 "orders": self._save_order, "messages": self._save_message,
                 "customer_threads": self._save_thread, "customer_messages": self._save_customer_message}[res.name]
        record = saver(ctx, existing, obj)
        return self.entity(res, record, values=obj)

    def _validate(self, res: Resource, obj: dict) -> None:
        """ObjectModel::validateFields: the first failing field, in definition order (code 85). On 8.x the
        message goes through the translator, which escapes it (recorded: "OrderCarrier-&gt;tracking_number");
        1.7 shows "->" (reference §4.7)."""
        for f in res.fields:
            if f.name == "id" or f.getter or f.kind == "ml":
                continue
            value = obj.get(f.name)
            text = "" if value is None else str(value)
            prop = self._property(res, f.name)
            size = f.size_in(self.version_tuple)
            if f.required and text == "":
                raise WsError(400, 85, f'Validation error: "Property {prop} is empty"')
            if text == "":
                continue
            if f.validate and not VALIDATORS[f.validate](text):
                raise WsError(400, 85, f'Validation error: "Property {prop} is not valid"')
            if size and len(text) > size:
                raise WsError(400, 85, f'Validation error: "Property {prop} length ({len(text)}) must be between 0 and {size}"')

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
        return text[:f.column] if f.column else text

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

    # --- per resource --------------------------------------------------------------------------------------

    def _save_history(self, ctx: Ctx, existing, obj: dict) -> dict:
        """OrderHistory::addWs (§3.2): no same-state guard, date_add set by add(). An unknown order or state is
        a PHP fatal error before anything is written: 500, empty body (recorded: order_history_post_order_999,
        order_history_post_state_999; date_upd.md row 4)."""
        id_order, state_id = php_int(obj["id_order"]), php_int(obj["id_order_state"])
        if id_order not in self.orders or state_id not in self.states:
            raise PhpFatal()
        history = self.change_state(self.orders[id_order], state_id, id_employee=php_int(obj.get("id_employee") or 0),
                                    send_mail=self._mails_go(ctx), source="webservice")
        obj["id_order_state"] = state_id  # changeIdOrderState casts it: an int in JSON (recorded)
        return self._added(RESOURCES["order_histories"], obj, history)

    def _save_order_carrier(self, ctx: Ctx, existing: dict, obj: dict) -> dict:
        """OrderCarrier::updateWs: the row is saved, then the in_transit mail if sendemail (no same-number check,
        §3.3). The order is not touched: its date_upd stays (date_upd.md rows 5-7)."""
        for name, value in self._row(RESOURCES["order_carriers"], obj).items():
            existing[name] = value
        if obj.get("date_add") in (None, ""):
            obj["date_add"] = existing["date_add"]  # ObjectModel::update sets a reset date_add to "now"
        if self._mails_go(ctx):
            self.in_transit_mail(existing)
        return existing

    def _order_setter(self, order: dict | None, f: Field, text: str) -> None:
        """Order::setWsShippingNumber (§3.1: writes the first order_carrier row, no mail; recorded:
        order_patch_shipping_number) and Order::setWsCurrentState (§5.3: setCurrentState, state mail always,
        same-state guard from 1.7.8)."""
        if order is None:
            raise WsError(501, 124, "Simulator: creating an order is not simulated")
        if f.name == "shipping_number":
            self.set_shipping_number(order, text)
            return
        state_id = php_int(text)
        if state_id not in self.states:
            raise PhpFatal()
        if self.version_tuple >= (1, 7, 8) and order["current_state"] == state_id:
            return
        self.change_state(order, state_id, id_employee=0, send_mail=True, source="webservice")

    def _save_order(self, ctx: Ctx, existing: dict, obj: dict) -> dict:
        """PATCH /api/orders/{id}: Order::update() stamps date_upd (recorded: order_patch_shipping_number,
        date_upd.md row 8)."""
        for name, value in self._row(RESOURCES["orders"], obj).items():
            existing[name] = value
        existing["date_upd"] = obj["date_upd"] = self.now()
        return existing

    def _save_message(self, ctx: Ctx, existing, obj: dict) -> dict:
        """Legacy `message` table (recorded: message_post_legacy): no date_upd moves (date_upd.md row 15)."""
        record = self._row(RESOURCES["messages"], obj)
        if record["id_order"] and record["id_order"] not in self.orders:
            # Simulator choice (not recorded): a message for an unknown order is refused as invalid.
            prop = self._property(RESOURCES["messages"], "id_order")
            raise WsError(400, 85, f'Validation error: "Property {prop} is not valid" (order {record["id_order"]} does not exist)')
        record["date_add"] = self.now()
        record = {"id": max((m["id"] for m in self.messages), default=0) + 1, **record}
        self.messages.append(record)
        return self._added(RESOURCES["messages"], obj, record)

    def _save_thread(self, ctx: Ctx, existing, obj: dict) -> dict:
        """CustomerThread::add (recorded: customer_thread_post; token cut to 12 by its column,
        customer_thread_post_long_token; a thread with id_customer 0 is accepted,
        customer_thread_post_without_customer). No order's date_upd moves (date_upd.md row 11)."""
        row = self._row(RESOURCES["customer_threads"], obj)
        row["date_add"] = row["date_upd"] = self.now()
        return self._added(RESOURCES["customer_threads"], obj, self.add_thread(row))

    def _save_customer_message(self, ctx: Ctx, existing, obj: dict) -> dict:
        """CustomerMessage::add (recorded: customer_message_post_private, customer_message_post_xml): the
        message has its own dates; neither the thread's nor the order's date_upd moves (date_upd.md row 12)."""
        row = self._row(RESOURCES["customer_messages"], obj)
        row["date_add"] = row["date_upd"] = self.now()
        return self._added(RESOURCES["customer_messages"], obj, self.add_customer_message(row))


def _child_text(element, name: str) -> str | None:
    """(string) $element->name in SimpleXML: the element's own text (CDATA included), verbatim."""
    for child in element:
        if child.tag == name:
            return (child.text or "") + "".join(grand.tail or "" for grand in child)
    return None
