"""The webservice output (WebserviceOutputBuilder + WebserviceOutputXML / WebserviceOutputJSON): records, lists,
schemas, errors and the resource list, byte for byte as the recorded 8.1.2 shop writes them.

An entity is what PHP would hold: `values` maps a field to its PHP value (int, str, None; a dict per language for
multilingual fields), `associations` maps an association name to its items (lists of such dicts).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from dataclasses import field as dc_field
from xml.sax.saxutils import quoteattr

from .php import cdata, php_falsy
from .shopdata import PS_RESOURCES, Association, Field, Resource


@dataclass
class Entity:
    values: dict
    associations: dict[str, list[dict]] = dc_field(default_factory=dict)


@dataclass
class Output:
    json: bool
    ws_url: str
    languages: list[int]
    version: tuple[int, ...]
    display_in_query: bool = False  # `display` was sent: JSON lists records under the plural node, unfiltered

    @property
    def always_cdata(self) -> bool:
        """8.x wraps even empty values in CDATA (recorded: <note><![CDATA[]]></note>); 1.7 leaves them empty."""
        return self.version >= (8,)

    @property
    def content_type(self) -> str:
        # Recorded: "application/json" (no charset) and "text/xml;charset=utf-8".
        return "application/json" if self.json else "text/xml;charset=utf-8"


def xml_document(inner: str) -> str:
    return '<?xml version="1.0" encoding="UTF-8"?>\n<prestashop xmlns:xlink="http://www.w3.org/1999/xlink">\n' + inner + "</prestashop>\n"


def php_json(content) -> str:
    """json_encode(..., JSON_UNESCAPED_UNICODE): compact, "/" escaped, accents kept."""
    return json.dumps(content, ensure_ascii=False, separators=(",", ":")).replace("/", "\\/")


def errors_body(out: Output, errors: list[tuple[int, str]]) -> str:
    """Recorded: auth_wrong_key (two errors in one document) and auth_wrong_key_json."""
    if out.json:
        return php_json({"errors": [{"code": code, "message": message} for code, message in errors]})
    inner = "".join(f"<error>\n<code>{cdata(code)}</code>\n<message>{cdata(message)}</message>\n</error>\n" for code, message in errors)
    return xml_document(f"<errors>\n{inner}</errors>\n")


# --- records -----------------------------------------------------------------------------------------------


def _xml_text(out: Output, value) -> str:
    text = "" if value is None else str(value)
    return cdata(text) if text or out.always_cdata else ""


def _xml_field(out: Output, f: Field, value, *, schema: str | None = None, in_association: bool = False) -> str:
    attrs = ""
    if f.kind == "ml":
        content = ""
        for lang in out.languages:
            more = ""
            if schema == "synopsis" or isinstance(value, dict):
                more = f' xlink:href="{out.ws_url}languages/{lang}"' + (' format="isUnsignedId" ' if schema == "synopsis" else "")
            text = value.get(lang) if isinstance(value, dict) else None
            content += f'<language id="{lang}"{more}>' + (cdata(text) if text is not None else "") + "</language>"
    else:
        # Builder: an id_* field without a value loses its xlink (but an association's field keeps it:
        # recorded <id_customization xlink:href=".../customizations/0">).
        if f.xlink and schema is None and (in_association or not (f.name.startswith("id_") and php_falsy(value))):
            attrs += f' xlink:href="{out.ws_url}{f.xlink}/{"" if value is None else value}"'
        if f.getter and schema != "blank":
            attrs += ' notFilterable="true"'
        content = _xml_text(out, "" if schema else value)
    if schema == "synopsis":
        size = f.size_in(out.version)
        attrs += (
            (' required="true"' if f.required else "")
            + (f' maxSize="{size}"' if size else "")
            + (f' format="{f.validate_in(out.version)}"' if f.validate_in(out.version) else "")
        )
    return f"<{f.name}{attrs}>{content}</{f.name}>\n"


def _xml_associations(out: Output, res: Resource, entity: Entity, schema: str | None = None) -> str:
    parts = ""
    for assoc in res.associations:
        items = [{}] if schema else entity.associations.get(assoc.name, [])
        attrs = "" if schema == "blank" else f' nodeType="{assoc.node}"' + (f' api="{assoc.api}"' if assoc.api else ' virtualEntity="true"')
        if not items:  # WebserviceOutputBuilder closes an empty association at once (core source, not recorded)
            parts += f"<{assoc.name}{attrs}/>\n"
            continue
        body = ""
        for item in items:
            link = f' xlink:href="{out.ws_url}{assoc.api}/{item["id"]}"' if assoc.api and not schema else ""
            body += (
                f"\t<{assoc.node}{link}>\n"
                + "".join("\t" + _xml_field(out, f, item.get(f.name), schema=schema, in_association=True) for f in assoc.fields)
                + f"\t</{assoc.node}>\n"
            )
        parts += f"<{assoc.name}{attrs}>\n{body}</{assoc.name}>\n"
    return f"<associations>\n{parts}</associations>\n"


def _xml_entity(out: Output, res: Resource, entity: Entity, fields) -> str:
    inner = "".join("\t" + _xml_field(out, f, entity.values.get(f.name)) for f in res.fields if fields == "full" or f.name in fields)
    if res.associations and fields == "full":
        inner += _xml_associations(out, res, entity)
    return f"<{res.node}>\n{inner}</{res.node}>\n"


def _json_value(out: Output, f: Field, value):
    if f.kind == "ml":
        items = [{"id": str(lang), "value": (value or {}).get(lang, "")} for lang in out.languages]
        return items[0]["value"] if len(items) == 1 else items
    if value is None and (f.name == "id" or f.name.startswith("id_")):
        return ""  # the builder turns a missing id_* value into ""
    return value


def _json_assoc(out: Output, assoc: Association, items: list[dict]) -> list[dict]:
    return [{f.name: _json_value(out, f, item.get(f.name)) for f in assoc.fields} for item in items]


def _json_entity(out: Output, res: Resource, entity: Entity, fields) -> dict:
    record = {f.name: _json_value(out, f, entity.values.get(f.name)) for f in res.fields if fields == "full" or f.name in fields}
    if res.associations and fields == "full":
        associations = {a.name: _json_assoc(out, a, entity.associations.get(a.name, [])) for a in res.associations}
        associations = {name: items for name, items in associations.items() if items}
        if associations:
            record["associations"] = associations
    if not out.display_in_query:
        # Recorded (order_2_json, order_carrier_patch_json): without `display` the record goes through
        # array_filter, which drops every PHP-falsy value ("", "0", 0, null) - not "0.000000".
        record = {name: value for name, value in record.items() if not php_falsy(value)}
    return record


def records_body(out: Output, res: Resource, entities: list[Entity], fields, *, single: bool) -> str:
    """GET answers and write answers. `fields`: "minimum", "full" or a list of names."""
    if out.json:
        if not entities:
            return "[]"  # WebserviceOutputJSON: an empty list is a bare JSON array (§2.3, orders_empty_json)
        if fields == "minimum":
            return php_json({res.name: [{"id": e.values["id"]} for e in entities]})
        records = [_json_entity(out, res, e, fields) for e in entities]
        if out.display_in_query:
            return php_json({res.name: records})
        return php_json({res.node: records[-1] or []})  # an all-falsy record is an empty PHP array: []
    if fields == "minimum":
        inner = "".join(f'<{res.node} id="{e.values["id"]}" xlink:href="{out.ws_url}{res.name}/{e.values["id"]}"/>\n' for e in entities)
    else:
        inner = "".join(_xml_entity(out, res, e, fields) for e in entities)
    return xml_document(inner if single else f"<{res.name}>\n{inner}</{res.name}>\n")


def schema_body(out: Output, res: Resource, kind: str) -> str:
    """?schema=blank|synopsis (recorded: schema_blank_*, schema_synopsis_*, schema_blank_order_histories_json)."""
    if out.json:
        empty = Entity({f.name: "" for f in res.fields}, {a.name: [{"id": ""}] for a in res.associations})
        return records_body(out, res, [empty], "full", single=True)
    inner = "".join("\t" + _xml_field(out, f, "", schema=kind) for f in res.fields if not (kind == "synopsis" and f.name == "id"))
    if res.associations:
        inner += _xml_associations(out, res, Entity({}), schema=kind)
    return xml_document(f"<{res.node}>\n{inner}</{res.node}>\n")


def resource_list_body(out: Output, shop_name: str, permissions: dict[str, set[str]], patch: bool) -> str:
    """GET /api/ in XML: the resources the key may use, with per-method attributes (recorded: root_xml)."""
    methods = ("get", "put", "post") + (("patch",) if patch else ()) + ("delete", "head")
    body = f"<api shopName={quoteattr(shop_name)}>\n"
    for name in sorted(n for n in PS_RESOURCES if n in permissions):
        allowed = {m.upper() for m in permissions[name]}
        attrs = f' xlink:href="{out.ws_url}{name}"' + "".join(f' {m}="{"true" if m.upper() in allowed else "false"}"' for m in methods)
        body += (
            f"<{name}{attrs}>\n<description{attrs}>\n{PS_RESOURCES[name][0]}</description>\n"
            f'<schema xlink:href="{out.ws_url}{name}?schema=blank" type="blank"/>\n'
            f'<schema xlink:href="{out.ws_url}{name}?schema=synopsis" type="synopsis"/>\n</{name}>\n'
        )
    return xml_document(body + "</api>\n")
