"""Static data of the simulated shop: resource definitions, native order states, carriers.

Section numbers (§) refer to the PrestaShop webservice reference the project keeps next to the code
(prestashop-webservice.md). Field lists follow the core ObjectModel definitions and their
webserviceParameters (only the fields an order-status / tracking sync can meet are simulated).
"""
from __future__ import annotations

from dataclasses import dataclass, field as dc_field


@dataclass(frozen=True)
class Field:
    name: str
    # id (the record id), int, bool, float, str, date, ml (multilingual)
    kind: str
    required: bool = False
    validate: str | None = None
    size: int | None = None
    xlink: str | None = None  # resource an id_* field points to (xlink:href in XML)
    getter: bool = False  # virtual field with a custom getter: displayed, not filterable (§2.4, code 34)


@dataclass(frozen=True)
class Resource:
    name: str  # plural, the URL segment and the list node
    node: str  # singular, the record node
    class_name: str
    fields: tuple[Field, ...]
    # Methods the simulator implements for this resource (permissions are checked separately).
    methods: frozenset = dc_field(default_factory=lambda: frozenset({"GET", "HEAD"}))

    def field(self, name: str) -> Field | None:
        for f in self.fields:
            if f.name == name:
                return f
        return None


def _f(name, kind="int", **kw) -> Field:
    return Field(name, kind, **kw)


ID = Field("id", "id")

RESOURCES: dict[str, Resource] = {
    r.name: r
    for r in (
        Resource("orders", "order", "Order", (
            ID,
            _f("id_address_delivery", xlink="addresses"),
            _f("id_address_invoice", xlink="addresses"),
            _f("id_cart", xlink="carts"),
            _f("id_currency", xlink="currencies"),
            _f("id_lang", xlink="languages"),
            _f("id_customer", xlink="customers"),
            _f("id_carrier", xlink="carriers"),
            _f("current_state", xlink="order_states"),
            _f("module", "str"),
            _f("invoice_number"),
            _f("invoice_date", "date"),
            _f("delivery_number"),
            _f("delivery_date", "date"),
            _f("valid", "bool"),
            _f("date_add", "date"),
            _f("date_upd", "date"),
            _f("shipping_number", "str", getter=True),  # §3.1: virtual, first order_carrier row
            _f("id_shop_group"),
            _f("id_shop"),
            _f("payment", "str"),
            _f("total_paid", "float"),
            _f("total_paid_tax_incl", "float"),
            _f("total_paid_tax_excl", "float"),
            _f("total_paid_real", "float"),
            _f("total_shipping", "float"),
            _f("reference", "str"),
        )),
        Resource("order_carriers", "order_carrier", "OrderCarrier", (
            ID,
            _f("id_order", required=True, validate="isUnsignedId", xlink="orders"),
            _f("id_carrier", required=True, validate="isUnsignedId", xlink="carriers"),
            _f("id_order_invoice", validate="isUnsignedId"),
            _f("weight", "float", validate="isFloat"),
            _f("shipping_cost_tax_excl", "float", validate="isFloat"),
            _f("shipping_cost_tax_incl", "float", validate="isFloat"),
            _f("tracking_number", "str", validate="isTrackingNumber", size=64),  # §3.3
            _f("date_add", "date", validate="isDate"),
        ), frozenset({"GET", "HEAD", "PUT", "PATCH"})),
        Resource("order_histories", "order_history", "OrderHistory", (
            ID,
            _f("id_employee", validate="isUnsignedId", xlink="employees"),
            _f("id_order_state", required=True, validate="isUnsignedId", xlink="order_states"),
            _f("id_order", required=True, validate="isUnsignedId", xlink="orders"),
            _f("date_add", "date", validate="isDate"),
        ), frozenset({"GET", "HEAD", "POST"})),
        Resource("order_states", "order_state", "OrderState", (
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
        )),
        Resource("carriers", "carrier", "Carrier", (
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
            _f("max_weight", "float"),
            _f("grade"),
            _f("external_module_name", "str"),
            _f("need_range", "bool"),
            _f("position"),
            _f("delay", "ml"),
        )),
        Resource("configurations", "configuration", "Configuration", (
            ID,
            _f("value", "str"),
            _f("name", "str"),
            _f("id_shop_group"),
            _f("id_shop"),
            _f("date_add", "date"),
            _f("date_upd", "date"),
        )),
        Resource("messages", "message", "Message", (
            ID,
            _f("id_cart", validate="isUnsignedId", xlink="carts"),
            _f("id_order", validate="isUnsignedId", xlink="orders"),
            _f("id_customer", validate="isUnsignedId", xlink="customers"),
            _f("id_employee", validate="isUnsignedId", xlink="employees"),
            _f("message", "str", required=True, validate="isCleanHtml", size=1600),
            _f("private", "bool", validate="isBool"),
            _f("date_add", "date", validate="isDate"),
        ), frozenset({"GET", "HEAD", "POST"})),
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
    (1, ("PS_OS_CHEQUE",), "Awaiting check payment", "En attente du paiement par chèque", "cheque", 0, 1, 0, 0, 0, 0, 0, "ps_checkpayment", "#34209E"),
    (2, ("PS_OS_PAYMENT",), "Payment accepted", "Paiement accepté", "payment", 1, 1, 1, 0, 0, 1, 1, "", "#3498D8"),
    (3, ("PS_OS_PREPARATION",), "Processing in progress", "En cours de préparation", "preparation", 1, 1, 1, 1, 0, 1, 0, "", "#3498D8"),
    (4, ("PS_OS_SHIPPING",), "Shipped", "Expédié", "shipped", 1, 1, 1, 1, 1, 1, 0, "", "#01B887"),
    (5, ("PS_OS_DELIVERED",), "Delivered", "Livré", "", 1, 0, 1, 1, 1, 1, 0, "", "#01B887"),
    (6, ("PS_OS_CANCELED",), "Canceled", "Annulé", "order_canceled", 0, 1, 0, 0, 0, 0, 0, "", "#2C3E50"),
    (7, ("PS_OS_REFUND",), "Refunded", "Remboursé", "refund", 1, 1, 0, 0, 0, 0, 0, "", "#01B887"),
    (8, ("PS_OS_ERROR",), "Payment error", "Erreur de paiement", "payment_error", 0, 1, 0, 0, 0, 0, 0, "", "#E74C3C"),
    (9, ("PS_OS_OUTOFSTOCK", "PS_OS_OUTOFSTOCK_PAID"), "On backorder (paid)", "En attente de réapprovisionnement (payé)", "outofstock", 1, 1, 0, 0, 0, 1, 0, "", "#3498D8"),
    (10, ("PS_OS_BANKWIRE",), "Awaiting bank wire payment", "En attente de virement bancaire", "bankwire", 0, 1, 0, 0, 0, 0, 0, "ps_wirepayment", "#34209E"),
    (11, ("PS_OS_WS_PAYMENT",), "Remote payment accepted", "Paiement à distance accepté", "payment", 1, 1, 1, 0, 0, 1, 0, "", "#3498D8"),
    (12, ("PS_OS_OUTOFSTOCK_UNPAID",), "On backorder (not paid)", "En attente de réapprovisionnement (non payé)", "outofstock", 0, 1, 0, 0, 0, 0, 0, "", "#34209E"),
    (13, ("PS_OS_COD_VALIDATION",), "Awaiting Cash On Delivery validation", "En attente de paiement à la livraison", "cashondelivery", 0, 0, 0, 0, 0, 0, 0, "ps_cashondelivery", "#34209E"),
)

# (id, id_reference, name, tracking url, deleted, delay en, delay fr). Carrier 26 is the old version of 27:
# editing a carrier in the BO creates a new id and flags the old one deleted, id_reference stays (§3.5).
CARRIERS = (
    (1, 1, "Click and collect", "", 0, "Pick up in-store", "Retrait en magasin"),
    (26, 2, "Colissimo", "https://www.laposte.fr/outils/suivre-vos-envois?code=@", 1, "48-72 hours", "48-72 heures"),
    (27, 2, "Colissimo", "https://www.laposte.fr/outils/suivre-vos-envois?code=@", 0, "48-72 hours", "48-72 heures"),
    (28, 3, "DPD Predict", "https://tracking.dpd.de/status/fr_FR/parcel/@", 0, "24-48 hours", "24-48 heures"),
)
