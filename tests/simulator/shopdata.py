"""Static data of the simulated shop: resource definitions, native order states, carriers.

Section numbers (§) refer to the PrestaShop webservice reference the project keeps next to the code
(prestashop-webservice.md); "recorded" names an exchange of the PrestaShop 8.1.2 recording kept in
recordings/prestashop-8.1.2/ (transcripts.jsonl). Field lists and their order are the recorded ones where the
recording shows the resource (orders, order_carriers, order_histories, order_states, configurations,
customer_threads, customer_messages, messages); elsewhere they follow the core ObjectModel definitions.
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field as dc_field


@dataclass(frozen=True)
class Field:
    name: str
    # id (the record id), int, bool, float, str, date, ml (multilingual)
    kind: str
    required: bool = False
    validate: str | None = None
    size: int | None = None  # ObjectModel size: validated (code 85) and shown as maxSize in the synopsis
    size_since: tuple[int, ...] = (0,)  # version from which the model declares `size`
    column: int | None = None  # varchar length: MySQL cuts a longer value silently (non-strict mode)
    xlink: str | None = None  # resource an id_* field points to (xlink:href in XML)
    getter: bool = False  # virtual field with a custom getter: displayed, not filterable (§2.4, code 34)
    setter: bool = False  # a getter field that can be written (orders.shipping_number, §3.1)
    decimals: int = 6  # float fields: decimal(20,6) unless said otherwise
    # Later ObjectModel definitions: from a version on, other values of `validate` / `size` ((name, value) pairs).
    changes: tuple[tuple[tuple[int, ...], tuple[tuple[str, object], ...]], ...] = ()

    def _in(self, name: str, version: tuple[int, ...]):
        value = getattr(self, name)
        for since, values in self.changes:
            if version >= since:
                value = dict(values).get(name, value)
        return value

    def size_in(self, version: tuple[int, ...]) -> int | None:
        return self._in("size", version) if version >= self.size_since else None

    def validate_in(self, version: tuple[int, ...]) -> str | None:
        return self._in("validate", version)


@dataclass(frozen=True)
class Association:
    name: str  # <associations><order_rows ...>
    node: str  # one item: <order_row>
    fields: tuple[Field, ...]
    api: str | None = None  # a resource of its own: items get an xlink:href and the wrapper api="..."


@dataclass(frozen=True)
class Resource:
    name: str  # plural, the URL segment and the list node
    node: str  # singular, the record node
    class_name: str
    fields: tuple[Field, ...]
    # Methods the simulator implements for this resource (permissions are checked separately).
    methods: frozenset = dc_field(default_factory=lambda: frozenset({"GET", "HEAD"}))
    associations: tuple[Association, ...] = ()

    def field(self, name: str) -> Field | None:
        for f in self.fields:
            if f.name == name:
                return f
        return None


def _f(name, kind="int", **kw) -> Field:
    return Field(name, kind, **kw)


def _money(name: str, **kw) -> Field:
    return Field(name, "float", **kw)


ID = Field("id", "id")
WRITES = frozenset({"GET", "HEAD", "POST"})

# Recorded: orders_full_json / orders_full_xml (field order, JSON types, the order_rows association).
ORDER_ROWS = Association(
    "order_rows",
    "order_row",
    (
        ID,
        _f("product_id", xlink="products"),
        _f("product_attribute_id"),
        _f("product_quantity"),
        _f("product_name", "str"),
        _f("product_reference", "str"),
        _f("product_ean13", "str"),
        _f("product_isbn", "str"),
        _f("product_upc", "str"),
        _money("product_price"),
        _f("id_customization", xlink="customizations"),
        _money("unit_price_tax_incl"),
        _money("unit_price_tax_excl"),
    ),
)

# Recorded: customer_threads_by_order_xml (the customer_messages association, ids with an xlink).
THREAD_MESSAGES = Association("customer_messages", "customer_message", (ID,), api="customer_messages")

RESOURCES: dict[str, Resource] = {
    r.name: r
    for r in (
        Resource(
            "orders",
            "order",
            "Order",
            (
                ID,
                _f("id_address_delivery", required=True, validate="isUnsignedId", xlink="addresses"),
                _f("id_address_invoice", required=True, validate="isUnsignedId", xlink="addresses"),
                _f("id_cart", required=True, validate="isUnsignedId", xlink="carts"),
                _f("id_currency", required=True, validate="isUnsignedId", xlink="currencies"),
                _f("id_lang", required=True, validate="isUnsignedId", xlink="languages"),
                _f("id_customer", required=True, validate="isUnsignedId", xlink="customers"),
                _f("id_carrier", required=True, validate="isUnsignedId", xlink="carriers"),
                _f("current_state", validate="isUnsignedId", xlink="order_states", setter=True),  # setWsCurrentState
                _f("module", "str", required=True),
                _f("invoice_number"),
                _f("invoice_date", "date"),
                _f("delivery_number"),
                _f("delivery_date", "date"),
                _f("valid", "bool"),
                _f("date_add", "date", validate="isDate"),
                _f("date_upd", "date", validate="isDate"),
                # §3.1: virtual; the getter reads the first order_carrier row, the setter writes it.
                _f("shipping_number", "str", getter=True, setter=True),
                _f("note", "str"),
                _f("id_shop_group"),
                _f("id_shop"),
                _f("secure_key", "str"),
                _f("payment", "str", required=True),
                _f("recyclable", "bool", validate="isBool"),
                _f("gift", "bool", validate="isBool"),
                _f("gift_message", "str"),
                _f("mobile_theme", "bool"),
                _money("total_discounts"),
                _money("total_discounts_tax_incl"),
                _money("total_discounts_tax_excl"),
                _money("total_paid", required=True),
                _money("total_paid_tax_incl"),
                _money("total_paid_tax_excl"),
                _money("total_paid_real", required=True),
                _money("total_products", required=True),
                _money("total_products_wt", required=True),
                _money("total_shipping"),
                _money("total_shipping_tax_incl"),
                _money("total_shipping_tax_excl"),
                _money("carrier_tax_rate", decimals=3),
                _money("total_wrapping"),
                _money("total_wrapping_tax_incl"),
                _money("total_wrapping_tax_excl"),
                _f("round_mode"),
                _f("round_type"),
                _money("conversion_rate", required=True),
                _f("reference", "str"),
            ),
            frozenset({"GET", "HEAD", "PATCH"}),
            (ORDER_ROWS,),
        ),
        # Recorded: order_carriers_by_order_xml, schema_synopsis_order_carriers (no maxSize on 8.1.2: a 65-char
        # number is accepted and cut to the varchar(64) column, order_carrier_patch_65_chars); 9.x declares size
        # 64 on the model (§3.3).
        Resource(
            "order_carriers",
            "order_carrier",
            "OrderCarrier",
            (
                ID,
                _f("id_order", required=True, validate="isUnsignedId", xlink="orders"),
                _f("id_carrier", required=True, validate="isUnsignedId", xlink="carriers"),
                _f("id_order_invoice", validate="isUnsignedId"),
                _money("weight", validate="isFloat"),
                _money("shipping_cost_tax_excl", validate="isFloat"),
                _money("shipping_cost_tax_incl", validate="isFloat"),
                _f("tracking_number", "str", validate="isTrackingNumber", size=64, size_since=(9,), column=64),
                _f("date_add", "date", validate="isDate"),
            ),
            frozenset({"GET", "HEAD", "PUT", "PATCH"}),
        ),
        # Recorded: schema_synopsis_order_histories, order_history_post_sendemail.
        Resource(
            "order_histories",
            "order_history",
            "OrderHistory",
            (
                ID,
                _f("id_employee", validate="isUnsignedId", xlink="employees"),
                _f("id_order_state", required=True, validate="isUnsignedId", xlink="order_states"),
                _f("id_order", required=True, validate="isUnsignedId", xlink="orders"),
                _f("date_add", "date", validate="isDate"),
            ),
            WRITES,
        ),
        # Recorded: order_states_full_json, order_state_4_xml.
        Resource(
            "order_states",
            "order_state",
            "OrderState",
            (
                ID,
                _f("unremovable", "bool"),
                _f("delivery", "bool"),
                _f("hidden", "bool"),
                _f("send_email", "bool"),
                _f("module_name", "str"),
                _f("invoice", "bool"),
                _f("color", "str"),
                _f("logable", "bool"),
                _f("shipped", "bool"),
                _f("paid", "bool"),
                _f("pdf_delivery", "bool"),
                _f("pdf_invoice", "bool"),
                _f("deleted", "bool"),
                _f("name", "ml", required=True, size=64),
                _f("template", "ml"),
            ),
        ),
        Resource(
            "carriers",
            "carrier",
            "Carrier",
            (
                ID,
                _f("deleted", "bool"),
                _f("is_module", "bool"),
                _f("id_tax_rules_group"),
                _f("id_reference"),
                _f("name", "str"),
                _f("active", "bool"),
                _f("is_free", "bool"),
                _f("url", "str"),
                _f("shipping_handling", "bool"),
                _f("shipping_external", "bool"),
                _f("range_behavior", "bool"),
                _f("shipping_method"),
                _f("max_width"),
                _f("max_height"),
                _f("max_depth"),
                _money("max_weight"),
                _f("grade"),
                _f("external_module_name", "str"),
                _f("need_range", "bool"),
                _f("position"),
                _f("delay", "ml"),
            ),
        ),
        # Recorded: configuration_ps_os_shipping_json (id_shop_group / id_shop NULL come out as "").
        Resource(
            "configurations",
            "configuration",
            "Configuration",
            (
                ID,
                _f("value", "str"),
                _f("name", "str"),
                _f("id_shop_group"),
                _f("id_shop"),
                _f("date_add", "date"),
                _f("date_upd", "date"),
            ),
        ),
        # Recorded: schema_synopsis_messages, messages_by_order_json. Message::$definition is the same from 1.7 to 9
        # (core source): isCleanHtml, 1600 characters (Tools::strlen, characters).
        Resource(
            "messages",
            "message",
            "Message",
            (
                ID,
                _f("id_cart", validate="isUnsignedId", xlink="carts"),
                _f("id_order", validate="isUnsignedId", xlink="orders"),
                _f("id_customer", validate="isUnsignedId", xlink="customers"),
                _f("id_employee", validate="isUnsignedId", xlink="employees"),
                _f("message", "str", required=True, validate="isCleanHtml", size=1600),
                _f("private", "bool", validate="isBool"),
                _f("date_add", "date", validate="isDate"),
            ),
            WRITES,
        ),
        # Recorded: schema_synopsis_customer_threads, customer_threads_by_order_xml; the token column is
        # varchar(12): customer_thread_post_long_token is stored cut to 12 characters.
        Resource(
            "customer_threads",
            "customer_thread",
            "CustomerThread",
            (
                ID,
                _f("id_lang", required=True, validate="isUnsignedId", xlink="languages"),
                _f("id_shop", validate="isUnsignedId", xlink="shops"),
                _f("id_customer", validate="isUnsignedId", xlink="customers"),
                _f("id_order", validate="isUnsignedId", xlink="orders"),
                _f("id_product", validate="isUnsignedId"),
                _f("id_contact", required=True, validate="isUnsignedId"),
                _f("email", "str", validate="isEmail", size=255),
                _f("token", "str", required=True, validate="isGenericName", column=12),
                _f("status", "str"),
                _f("date_add", "date", validate="isDate"),
                _f("date_upd", "date", validate="isDate"),
            ),
            WRITES,
            (THREAD_MESSAGES,),
        ),
        # Recorded: schema_synopsis_customer_messages, customer_messages_by_thread_json.
        Resource(
            "customer_messages",
            "customer_message",
            "CustomerMessage",
            (
                ID,
                _f("id_employee", validate="isUnsignedId", xlink="employees"),
                _f("id_customer_thread", xlink="customer_threads"),
                _f("ip_address", "str", validate="isIp2Long", size=15),
                # 1.7 (core source): isCleanHtml; 8.x declares no validator (recorded synopsis: no format, maxSize
                # 16777216); 9.x's core validates with isCleanHtml again, size LIMIT_MEDIUMTEXT_UTF8_MB4 (not recorded).
                _f(
                    "message",
                    "str",
                    required=True,
                    validate="isCleanHtml",
                    size=16777216,
                    changes=(((8,), (("validate", None),)), ((9,), (("validate", "isCleanHtml"), ("size", 4194303)))),
                ),
                _f("file_name", "str"),
                _f("user_agent", "str"),
                _f("private", "bool", validate="isBool"),
                _f("date_add", "date", validate="isDate"),
                _f("date_upd", "date", validate="isDate"),
                _f("read", "bool", validate="isBool"),
            ),
            WRITES,
        ),
        # Not recorded: the Customer fields a sync reads (email for a customer thread), in core order.
        Resource(
            "customers",
            "customer",
            "Customer",
            (
                ID,
                _f("id_default_group", xlink="groups"),
                _f("id_lang", xlink="languages"),
                _f("secure_key", "str"),
                _f("deleted", "bool"),
                _f("lastname", "str"),
                _f("firstname", "str"),
                _f("email", "str"),
                _f("id_gender"),
                _f("newsletter", "bool"),
                _f("optin", "bool"),
                _f("active", "bool"),
                _f("note", "str"),
                _f("is_guest", "bool"),
                _f("id_shop"),
                _f("id_shop_group"),
                _f("date_add", "date"),
                _f("date_upd", "date"),
            ),
        ),
    )
}

# Every resource of a 8.x core (WebserviceRequest::getResources), for "did you mean" (code 27) and for the
# resource list of GET /api/. Value: (description, methods forbidden by core, answered 405 code 101).
PS_RESOURCES: dict[str, tuple[str, tuple[str, ...]]] = {
    "addresses": ("The Customer, Brand and Customer addresses", ()),
    "attachments": ("The product Attachments", ()),
    "carriers": ("The Carriers", ()),
    "carts": ("Customer's carts", ()),
    "cart_rules": ("Cart rules management", ()),
    "categories": ("The product categories", ()),
    "combinations": ("The product combinations", ()),
    "configurations": ("Shop configuration", ()),
    "contacts": ("Shop contacts", ()),
    "content_management_system": ("Content management system", ()),
    "countries": ("The countries", ()),
    "currencies": ("The currencies", ()),
    "customers": ("The e-shop's customers", ()),
    "customer_messages": ("Customer services messages", ()),
    "customer_threads": ("Customer services threads", ()),
    "customizations": ("Customization values", ()),
    "deliveries": ("Product delivery", ()),
    "employees": ("The Employees", ()),
    "groups": ("The customer's groups", ()),
    "guests": ("The guests", ()),
    "images": ("The images", ()),
    "image_types": ("The image types", ()),
    "languages": ("Shop languages", ()),
    "manufacturers": ("The product brands", ()),
    "messages": ("The Messages", ()),
    "order_carriers": ("The Order carriers", ()),
    "order_cart_rules": ("The Order cart rules", ()),
    "order_details": ("Details of an order", ()),
    "order_histories": ("The Order histories", ()),
    "order_invoices": ("The Order invoices", ()),
    "order_payments": ("The Order payments", ()),
    "order_slip": ("The Order slips", ()),
    "order_states": ("The Order statuses", ()),
    "orders": ("The Customers orders", ()),
    "price_ranges": ("Price ranges", ()),
    "product_customization_fields": ("Customization Field", ()),
    "product_feature_values": ("The product feature values", ()),
    "product_features": ("The product features", ()),
    "product_option_values": ("The product options value", ()),
    "product_options": ("The product options", ()),
    "product_suppliers": ("Product Suppliers", ()),
    "products": ("The products", ()),
    "search": ("Search", ("PUT", "POST", "PATCH", "DELETE")),
    "shop_groups": ("Shop groups from multi-shop feature", ()),
    "shop_urls": ("Shop URLs from multi-shop feature", ()),
    "shops": ("Shops from multi-shop feature", ()),
    "specific_price_rules": ("Specific price management", ()),
    "specific_prices": ("Specific price management", ()),
    "states": ("The available states of countries", ()),
    "stock_availables": ("Available quantities", ("POST", "DELETE")),
    "stock_movement_reasons": ("Stock movement reason", ()),
    "stock_movements": ("Stock movements", ("PUT", "POST", "PATCH", "DELETE")),
    "stocks": ("Stocks", ("PUT", "POST", "PATCH", "DELETE")),
    "stores": ("The stores", ()),
    "suppliers": ("The product suppliers", ()),
    "supply_order_details": ("Supply Order Details", ("PUT", "POST", "PATCH", "DELETE")),
    "supply_order_histories": ("Supply Order Histories", ("PUT", "POST", "PATCH", "DELETE")),
    "supply_order_receipt_histories": ("Supply Order Receipt Histories", ("PUT", "POST", "PATCH", "DELETE")),
    "supply_order_states": ("Supply Order Statuses", ("PUT", "POST", "PATCH", "DELETE")),
    "supply_orders": ("Supply Orders", ("PUT", "POST", "PATCH", "DELETE")),
    "tags": ("The Products tags", ()),
    "tax_rule_groups": ("Tax rule groups", ()),
    "tax_rules": ("Tax rules entity", ()),
    "taxes": ("The tax rate", ()),
    "translated_configurations": ("Shop configuration", ()),
    "warehouse_product_locations": ("Location of products in warehouses", ("PUT", "POST", "PATCH", "DELETE")),
    "warehouses": ("Warehouses", ("DELETE",)),
    "weight_ranges": ("Weight ranges", ()),
    "zones": ("The Countries zones", ()),
}

# §6: native states of a fresh 1.7.7+ / 8.x / 9.x install.
# (id, config keys, English, French, template, invoice, send_email, logable, delivery, shipped, paid, pdf_invoice,
#  module, colour)
NATIVE_STATES = (
    (
        1,
        ("PS_OS_CHEQUE",),
        "Awaiting check payment",
        "En attente du paiement par chèque",
        "cheque",
        0,
        1,
        0,
        0,
        0,
        0,
        0,
        "ps_checkpayment",
        "#34209E",
    ),
    (2, ("PS_OS_PAYMENT",), "Payment accepted", "Paiement accepté", "payment", 1, 1, 1, 0, 0, 1, 1, "", "#3498D8"),
    (3, ("PS_OS_PREPARATION",), "Processing in progress", "En cours de préparation", "preparation", 1, 1, 1, 1, 0, 1, 0, "", "#3498D8"),
    (4, ("PS_OS_SHIPPING",), "Shipped", "Expédié", "shipped", 1, 1, 1, 1, 1, 1, 0, "", "#01B887"),
    (5, ("PS_OS_DELIVERED",), "Delivered", "Livré", "", 1, 0, 1, 1, 1, 1, 0, "", "#01B887"),
    (6, ("PS_OS_CANCELED",), "Canceled", "Annulé", "order_canceled", 0, 1, 0, 0, 0, 0, 0, "", "#2C3E50"),
    (7, ("PS_OS_REFUND",), "Refunded", "Remboursé", "refund", 1, 1, 0, 0, 0, 0, 0, "", "#01B887"),
    (8, ("PS_OS_ERROR",), "Payment error", "Erreur de paiement", "payment_error", 0, 1, 0, 0, 0, 0, 0, "", "#E74C3C"),
    (
        9,
        ("PS_OS_OUTOFSTOCK", "PS_OS_OUTOFSTOCK_PAID"),
        "On backorder (paid)",
        "En attente de réapprovisionnement (payé)",
        "outofstock",
        1,
        1,
        0,
        0,
        0,
        1,
        0,
        "",
        "#3498D8",
    ),
    (
        10,
        ("PS_OS_BANKWIRE",),
        "Awaiting bank wire payment",
        "En attente de virement bancaire",
        "bankwire",
        0,
        1,
        0,
        0,
        0,
        0,
        0,
        "ps_wirepayment",
        "#34209E",
    ),
    (11, ("PS_OS_WS_PAYMENT",), "Remote payment accepted", "Paiement à distance accepté", "payment", 1, 1, 1, 0, 0, 1, 0, "", "#3498D8"),
    (
        12,
        ("PS_OS_OUTOFSTOCK_UNPAID",),
        "On backorder (not paid)",
        "En attente de réapprovisionnement (non payé)",
        "outofstock",
        0,
        1,
        0,
        0,
        0,
        0,
        0,
        "",
        "#34209E",
    ),
    (
        13,
        ("PS_OS_COD_VALIDATION",),
        "Awaiting Cash On Delivery validation",
        "En attente de paiement à la livraison",
        "cashondelivery",
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        "ps_cashondelivery",
        "#34209E",
    ),
)

# (id, id_reference, name, tracking url, deleted, delay en, delay fr, shipping cost tax excl, tax incl). Carrier 26
# is the old version of 27: editing a carrier in the BO creates a new id and flags the old one deleted,
# id_reference stays (§3.5). The costs are not webservice fields: the back office uses them when the merchant
# changes an order's carrier (date_upd.md row 10).
CARRIERS = (
    (1, 1, "Click and collect", "", 0, "Pick up in-store", "Retrait en magasin", "0.000000", "0.000000"),
    (26, 2, "Colissimo", "https://www.laposte.fr/outils/suivre-vos-envois?code=@", 1, "48-72 hours", "48-72 heures", "6.580000", "7.900000"),
    (27, 2, "Colissimo", "https://www.laposte.fr/outils/suivre-vos-envois?code=@", 0, "48-72 hours", "48-72 heures", "6.580000", "7.900000"),
    (28, 3, "DPD Predict", "https://tracking.dpd.de/status/fr_FR/parcel/@", 0, "24-48 hours", "24-48 heures", "8.250000", "9.900000"),
)
