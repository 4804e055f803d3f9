"""The admin page's words, French first, English beside: one small dict, no gettext.

`t(key, lang)` gives the text; a key missing in a language falls back to French, a missing key shows itself
(tests check that every key used by the templates exists in both languages).
"""

from __future__ import annotations

import re

LANGUAGES = ("fr", "en")
DEFAULT_LANGUAGE = "fr"

# key: (français, English)
MESSAGES: dict[str, tuple[str, str]] = {
    # --- frame, navigation, login ---
    "app.name": ("Sage 100 GesCom → PrestaShop", "Sage 100 GesCom → PrestaShop"),
    "app.subtitle": ("Mise à jour des commandes", "Order updates"),
    "nav.label": ("Menu principal", "Main menu"),
    "nav.dashboard": ("Tableau de bord", "Dashboard"),
    "nav.settings": ("Réglages", "Settings"),
    "nav.runs": ("Synchronisations", "Synchronisations"),
    "nav.orders": ("Commandes", "Orders"),
    "nav.skip": ("Aller au contenu", "Skip to content"),
    "nav.language": ("Langue", "Language"),
    "nav.logout": ("Se déconnecter", "Log out"),
    "nav.signed_in_as": ("Connecté avec la clé", "Signed in with key"),
    "login.title": ("Connexion", "Sign in"),
    "login.intro": (
        "Connectez-vous avec une clé API de portée « admin ».",
        "Sign in with an API key of scope “admin”.",
    ),
    "login.key": ("Clé API", "API key"),
    "login.key_help": (
        "Créez-en une sur le serveur : flask --app wsgi apikey create page-admin --scope admin",
        "Create one on the server: flask --app wsgi apikey create admin-page --scope admin",
    ),
    "login.submit": ("Se connecter", "Sign in"),
    "login.invalid": ("Cette clé est inconnue ou révoquée.", "This key is unknown or revoked."),
    "login.scope": (
        "Cette clé n'a pas la portée « admin » : elle ne peut pas ouvrir cette page.",
        "This key does not have scope “admin”: it cannot open this page.",
    ),
    "login.expired": ("Votre session a pris fin : reconnectez-vous.", "Your session ended: please sign in again."),
    "login.logged_out": ("Vous êtes déconnecté.", "You are signed out."),
    "error.title": ("Erreur", "Error"),
    "error.csrf": (
        "Ce formulaire a expiré ou ne vient pas de cette page. Rechargez la page et recommencez.",
        "This form has expired or does not come from this page. Reload the page and try again.",
    ),
    "error.not_found": ("Cette page n'existe pas.", "This page does not exist."),
    "error.too_many": (
        "Trop de tentatives de connexion depuis cette adresse : réessayez dans {seconds} s.",
        "Too many sign-in attempts from this address: try again in {seconds} s.",
    ),
    "error.unexpected": (
        "Une erreur inattendue s'est produite ; elle a été consignée dans le journal.",
        "An unexpected error occurred; it was logged.",
    ),
    "error.back": ("Retour au tableau de bord", "Back to the dashboard"),
    "common.yes": ("oui", "yes"),
    "common.no": ("non", "no"),
    "common.none": ("aucun", "none"),
    "common.never": ("jamais", "never"),
    "common.unknown_value": ("introuvable", "not found"),
    "common.seconds": ("s", "s"),
    "common.refresh": ("Actualiser", "Refresh"),
    "gescom.down": (
        "GesCom ne répond pas : {error}",
        "GesCom does not answer: {error}",
    ),
    # --- dashboard ---
    "dashboard.title": ("Tableau de bord", "Dashboard"),
    "dashboard.orders": ("Commandes de la boutique par étape", "Shop orders per stage"),
    "dashboard.orders_total": ("{total} commandes suivies, dont {open} ouvertes.", "{total} orders followed, {open} of them open."),
    "dashboard.stage_none": ("rien trouvé encore", "nothing found yet"),
    "dashboard.push": ("Envois à la boutique", "Push to the shop"),
    "dashboard.pull_pending": ("Mises à jour en attente d'acquittement par le module", "Updates waiting for the module's acknowledgement"),
    "dashboard.pull_oldest": ("la plus ancienne date du {when}", "the oldest is from {when}"),
    "dashboard.push_pending": ("En attente d'envoi", "Waiting to be pushed"),
    "dashboard.push_failed": ("En échec", "Failed"),
    "dashboard.push_pushed": ("Envoyées", "Pushed"),
    "dashboard.push_off": (
        "Aucune boutique configurée (PRESTASHOP_URL) : le module PrestaShop vient chercher les mises à jour.",
        "No shop configured (PRESTASHOP_URL): the PrestaShop module pulls the updates.",
    ),
    "dashboard.runs": ("Synchronisations", "Synchronisations"),
    "dashboard.last_success": ("Dernière synchronisation réussie", "Last successful run"),
    "dashboard.last_run": ("Dernière synchronisation", "Last run"),
    "dashboard.no_run": ("Aucune synchronisation réussie pour l'instant.", "No successful run yet."),
    "dashboard.connectivity": ("Connexions", "Connectivity"),
    "dashboard.store": ("Base du middleware", "Middleware store"),
    "dashboard.gescom": ("GesCom (Sage 100)", "GesCom (Sage 100)"),
    "dashboard.shop": ("Boutique PrestaShop", "PrestaShop shop"),
    "dashboard.ok": ("répond", "answers"),
    "dashboard.down": ("ne répond pas", "does not answer"),
    "dashboard.not_configured": ("non configurée", "not configured"),
    # --- stages ---
    "stage.ordered": ("Commande", "Ordered"),
    "stage.in_preparation": ("En préparation", "In preparation"),
    "stage.partially_shipped": ("Expédiée partiellement", "Partially shipped"),
    "stage.shipped": ("Expédiée", "Shipped"),
    "stage.invoiced": ("Facturée", "Invoiced"),
    "stage.returned": ("Retour", "Returned"),
    "stage.cancelled": ("Annulée", "Cancelled"),
    "stage_help.ordered": ("La commande est arrivée dans Sage (bon de commande).", "The order is in Sage (bon de commande)."),
    "stage_help.in_preparation": ("Une préparation de livraison est faite.", "A préparation de livraison exists."),
    "stage_help.partially_shipped": ("Une partie des articles est livrée.", "Some of the goods have shipped."),
    "stage_help.shipped": ("Tous les articles sont livrés.", "All the goods have shipped."),
    "stage_help.invoiced": ("Tous les articles sont facturés.", "All the goods are invoiced."),
    "stage_help.returned": ("Un bon de retour ou un avoir existe.", "A bon de retour or a credit note exists."),
    "stage_help.cancelled": ("La commande a disparu de Sage avant toute livraison.", "The order vanished from Sage before anything shipped."),
    # --- settings (the seed screen's wording) ---
    "settings.title": ("Mettre à jour les Statuts des Commandes sur la boutique", "Update the order statuses in the shop"),
    "settings.intro": (
        "Ce menu vous permet de configurer le changement des statuts des commandes dans la boutique.",
        "This page sets how order statuses change in the shop.",
    ),
    "settings.saved": ("Réglages enregistrés (version {version}).", "Settings saved (version {version})."),
    "settings.not_saved": (
        "Les réglages n'ont pas été enregistrés. Corrigez ce qui est signalé :",
        "The settings were not saved. Correct what is flagged:",
    ),
    "settings.conflict": (
        "Quelqu'un d'autre a modifié les réglages depuis l'ouverture de cette page : les vôtres n'ont pas été enregistrés. "
        "Le formulaire montre vos choix ; enregistrez à nouveau pour remplacer les leurs, ou rechargez la page pour voir les leurs.",
        "Someone else changed the settings since this page was opened: yours were not saved. The form shows your choices; "
        "save again to replace theirs, or reload the page to see theirs.",
    ),
    "settings.gescom_down": (
        "GesCom ne répond pas : la liste des champs ne peut pas être lue, et les réglages ne peuvent pas être enregistrés ({error}).",
        "GesCom does not answer: its fields cannot be listed, and settings cannot be saved ({error}).",
    ),
    "settings.states_shop": ("Statuts lus dans votre boutique.", "States read from your shop."),
    "settings.states_native": (
        "Aucune boutique configurée : ce sont les statuts natifs de PrestaShop. Vérifiez leurs numéros dans votre boutique.",
        "No shop configured: these are PrestaShop's native states. Check their ids in your shop.",
    ),
    "settings.save": ("Enregistrer", "Save"),
    "settings.section.tracking": ("Numéro de suivi", "Tracking number"),
    "settings.tracking.send": (
        "Envoyer le numéro de suivi du transporteur dans la boutique",
        "Send the carrier's tracking number to the shop",
    ),
    "settings.tracking.send_help": (
        "Le numéro de suivi saisi sur le document de vente dans Sage est envoyé à la boutique lors de la mise à jour des commandes.",
        "The tracking number typed on the Sage sales document is sent to the shop when orders are updated.",
    ),
    "settings.tracking.header_field": ("Champ Numéro de transporteur (document)", "Carrier number field (document)"),
    "settings.tracking.header_field_help": (
        "Le champ d'entête du document de vente où le numéro de suivi est saisi dans Sage.",
        "The sales document header field where the tracking number is typed in Sage.",
    ),
    "settings.tracking.line_field": ("Champ Numéro de transporteur (ligne)", "Carrier number field (line)"),
    "settings.tracking.line_field_help": (
        "Le champ des lignes du document où le numéro de suivi est saisi (souvent « N° colis »). « aucun » si vous ne l'utilisez pas.",
        "The document line field where the tracking number is typed (often “N° colis”). “none” if you do not use one.",
    ),
    "settings.tracking.state_on_send": ("Changer le statut en", "Change the status to"),
    "settings.tracking.state_on_send_help": (
        "Le statut donné à la commande dans la boutique quand son numéro de suivi apparaît pour la première fois.",
        "The status the shop order gets when its tracking number first appears.",
    ),
    "settings.tracking.import_from_shop": (
        "Mettre à jour le numéro de suivi dans la commande à partir de la boutique",
        "Update the tracking number in the order from the shop",
    ),
    "settings.tracking.import_from_shop_help": (
        "Un numéro de suivi saisi dans la boutique est écrit dans le champ d'entête ci-dessus du document Sage "
        "(bon de livraison, sinon préparation, sinon bon de commande), seulement si ce champ est vide.",
        "A tracking number typed in the shop is written into the header field above on the Sage document "
        "(delivery note, else preparation, else order), only when that field is empty.",
    ),
    "settings.section.options": ("Options", "Options"),
    "settings.options.intro": (
        "Cette section permet d'activer l'envoi du numéro du document de vente et des informations de livraison "
        "de la Gestion Commerciale dans la boutique.",
        "This section turns on sending the sales document number and the delivery information from GesCom to the shop.",
    ),
    "settings.options.send_piece_number": ("Envoyer le numéro de la pièce dans la boutique", "Send the document number to the shop"),
    "settings.options.send_piece_number_help": (
        "Le numéro de la dernière facture, sinon du dernier bon de livraison.",
        "The number of the latest invoice, else of the latest delivery note.",
    ),
    "settings.options.send_delivery_date": ("Envoyer la date de livraison dans la boutique", "Send the delivery date to the shop"),
    "settings.options.send_delivery_date_help": ("La date de la dernière livraison.", "The date of the latest delivery."),
    "settings.options.send_delivery_details": ("Envoyer le détail des livraisons dans la boutique", "Send the delivery details to the shop"),
    "settings.options.send_delivery_details_help": (
        "Pour chaque livraison : la pièce, la date, le transporteur, les numéros de suivi et les articles.",
        "For each delivery: the document, its date, the carrier, the tracking numbers and the goods.",
    ),
    "settings.section.states": ("Statuts", "Statuses"),
    "settings.states.intro": (
        "Le statut donné à la commande dans la boutique quand elle atteint chaque étape dans Sage. "
        "« Ne pas modifier le statut » : la boutique n'est pas touchée à cette étape.",
        "The status the shop order gets when it reaches each stage in Sage. “Do not change the status”: the shop is left alone at that stage.",
    ),
    "settings.states.stage": ("Étape", "Stage"),
    "settings.states.state": ("Statut dans la boutique", "Status in the shop"),
    "settings.state.keep": ("Ne pas modifier le statut", "Do not change the status"),
    "settings.notify_customer": ("Prévenir le client par e-mail", "Notify the customer by e-mail"),
    "settings.notify_customer_help": (
        "La boutique envoie au client l'e-mail prévu pour le nouveau statut, quand ce statut en a un.",
        "The shop sends the customer the e-mail of the new status, when that status has one.",
    ),
    "settings.shipped_document_type": ("Document qui vaut expédition", "Document that means shipped"),
    "settings.shipped_document_type_help": (
        "Choisissez « Préparation de livraison » si vous expédiez dès la préparation : l'étape « En préparation » n'apparaît alors jamais.",
        "Choose “Préparation de livraison” if you ship from the preparation: stage “In preparation” then never appears.",
    ),
    "settings.shipped.3": ("Bon de livraison (BL)", "Bon de livraison (BL, delivery note)"),
    "settings.shipped.2": ("Préparation de livraison (PL)", "Préparation de livraison (PL)"),
    "settings.link_field": ("Champ qui relie un document Sage à la commande de la boutique", "Field linking a Sage document to the shop order"),
    "settings.link_field_help": (
        "Le champ d'entête où votre connecteur range la commande de la boutique, en général « N° commande web » (l'id_order). "
        "À choisir avant la première synchronisation.",
        "The header field where your connector puts the shop order, usually “N° commande web” (the id_order). Choose it before the first run.",
    ),
    "settings.free_field": ("information libre", "free field"),
    # --- runs ---
    "runs.title": ("Synchronisations", "Synchronisations"),
    "runs.intro": (
        "Une synchronisation lit ce qui a changé dans Sage et prépare les mises à jour de la boutique. "
        "Elle a lieu toute seule à intervalle régulier ; vous pouvez aussi la lancer ici.",
        "A run reads what changed in Sage and prepares the shop's updates. It happens on its own at regular intervals; you can also start one here.",
    ),
    "runs.start": ("Lancer maintenant", "Run now"),
    "runs.start_help": ("Lance une synchronisation tout de suite.", "Starts a run right away."),
    "runs.preview": ("Prévisualiser", "Preview"),
    "runs.preview_help": (
        "Calcule ce qui serait envoyé à la boutique, commande par commande, sans rien enregistrer ni envoyer.",
        "Works out what would be sent to the shop, order by order, without storing or sending anything.",
    ),
    "runs.started": ("Synchronisation n°\u00a0{id} lancée.", "Run {id} started."),
    "runs.in_progress": (
        "Une synchronisation est déjà en cours : réessayez dans un instant.",
        "A run is already in progress: try again in a moment.",
    ),
    "runs.running_note": (
        "Une synchronisation est en cours : cette page se met à jour toute seule.",
        "A run is in progress: this page refreshes itself.",
    ),
    "runs.recent": ("Dernières synchronisations", "Recent runs"),
    "runs.none": ("Aucune synchronisation pour l'instant.", "No run yet."),
    "runs.col.id": ("N°", "No."),
    "runs.col.start": ("Début", "Start"),
    "runs.col.duration": ("Durée", "Duration"),
    "runs.col.checked": ("Commandes vérifiées", "Orders checked"),
    "runs.col.changed": ("Avec mise à jour", "With an update"),
    "runs.col.skipped": ("Ignorées", "Skipped"),
    "runs.col.unclaimed": ("Documents d'aucune boutique (ignorés)", "Documents no shop claims (ignored)"),
    "runs.col.updates": ("Mises à jour", "Updates"),
    "runs.col.status": ("Statut", "Status"),
    "runs.col.error": ("Erreur", "Error"),
    "runs.kind.dry_run": ("aperçu", "preview"),
    "runs.kind.full": ("complète", "full"),
    "runs.status.running": ("en cours", "running"),
    "runs.status.succeeded": ("réussie", "succeeded"),
    "runs.status.failed": ("échouée", "failed"),
    "runs.status.interrupted": ("interrompue", "interrupted"),
    "runs.warnings": ("Avertissements", "Warnings"),
    "runs.scan": ("Balayage de sécurité (cbModification)", "Safety-net scan (cbModification)"),
    "runs.scan_tag": ("balayage de sécurité", "safety-net scan"),
    "runs.scan_yes": ("oui", "yes"),
    "runs.scan_yes_help": ("modifications lues depuis le {since} (heure de GesCom)", "changes read from {since} (GesCom's clock)"),
    "runs.scan_no": ("non", "no"),
    "runs.scan_no_help": (
        "seuls les nouveaux documents et les commandes ouvertes ont été relus",
        "only new documents and open orders were read",
    ),
    "runs.skipped_title": ("Commandes de la boutique ignorées", "Skipped shop orders"),
    "runs.skipped_intro": (
        "Leurs documents n'ont pas pu être lus. Elles seront relues à la prochaine synchronisation.",
        "Their documents could not be read. The next run reads them again.",
    ),
    "runs.col.reason": ("Raison", "Reason"),
    "runs.col.documents": ("Documents", "Documents"),
    "runs.run_title": ("Synchronisation n°\u00a0{id}", "Run {id}"),
    "runs.back": ("Toutes les synchronisations", "All runs"),
    "runs.preview_title": ("Ce qui serait envoyé", "What would be sent"),
    "runs.preview_intro": (
        "Aperçu calculé le {when} : rien n'a été enregistré ni envoyé à la boutique.",
        "Preview worked out on {when}: nothing was stored or sent to the shop.",
    ),
    "runs.preview_empty": ("Rien à envoyer : aucune commande n'a changé.", "Nothing to send: no order changed."),
    "runs.preview_count": ("{count} commandes auraient une mise à jour.", "{count} orders would get an update."),
    "runs.preview_cut": ("Seules les {shown} premières sont affichées.", "Only the first {shown} are shown."),
    "runs.col.order": ("Commande", "Order"),
    "runs.col.stage": ("Étape", "Stage"),
    "runs.col.state": ("Statut envoyé", "Status sent"),
    "runs.col.tracking": ("Numéros de suivi", "Tracking numbers"),
    "runs.col.piece": ("Pièce", "Document"),
    "runs.col.delivery_date": ("Date de livraison", "Delivery date"),
    "runs.col.changes": ("Changements", "Changes"),
    "change.state": ("statut", "status"),
    "change.stage": ("étape", "stage"),
    "change.tracking": ("suivi", "tracking"),
    "change.piece": ("pièce", "document"),
    "change.delivery_date": ("date de livraison", "delivery date"),
    "change.deliveries": ("livraisons", "deliveries"),
    # --- orders ---
    "orders.title": ("Commandes", "Orders"),
    "orders.search": ("Commande de la boutique", "Shop order"),
    "orders.search_help": (
        "Le numéro de la commande (id_order), la valeur du champ de liaison, ou la référence de la boutique (par exemple KHWTQZXNB).",
        "The order number (id_order), the link field's value, or the shop reference (for example KHWTQZXNB).",
    ),
    "orders.submit": ("Rechercher", "Search"),
    "orders.not_found": ("Aucune commande suivie ne correspond à « {q} ».", "No followed order matches “{q}”."),
    "orders.not_followed": (
        "Trouvée dans Sage mais pas encore suivie : {keys}. Elle le sera à la prochaine synchronisation.",
        "Found in Sage but not followed yet: {keys}. The next run will pick it up.",
    ),
    "orders.several": ("Plusieurs commandes correspondent :", "Several orders match:"),
    "orders.recent": ("Dernières commandes mises à jour", "Recently updated orders"),
    "orders.order_title": ("Commande {key}", "Order {key}"),
    "orders.stage": ("Étape atteinte", "Stage reached"),
    "orders.current_stage": ("Étape visible dans Sage", "Stage Sage shows now"),
    "orders.open": ("Suivie", "Followed"),
    "orders.open_yes": ("oui, relue régulièrement", "yes, re-read regularly"),
    "orders.open_no": ("non, terminée", "no, finished"),
    "orders.id_order": ("id_order", "id_order"),
    "orders.bc_pieces": ("Bons de commande", "Sales orders"),
    "orders.tracking": ("Numéros de suivi", "Tracking numbers"),
    "orders.shop_state": ("Statut indiqué par la boutique", "State reported by the shop"),
    "orders.checked_at": ("Relue le", "Last read"),
    "orders.chain": ("Documents dans Sage", "Documents in Sage"),
    "orders.chain_none": ("Plus aucun document de cette commande dans Sage.", "No document of this order is left in Sage."),
    "orders.chain_error": ("Les documents ne peuvent pas être lus : {error}", "The documents cannot be read: {error}"),
    "orders.doc.date": ("Date", "Date"),
    "orders.doc.carrier": ("Transporteur", "Carrier"),
    "orders.doc.tracking": ("N° de suivi", "Tracking no."),
    "orders.line.sku": ("Article", "Item"),
    "orders.line.name": ("Désignation", "Description"),
    "orders.line.quantity": ("Quantité", "Quantity"),
    "orders.line.origin": ("Bon de commande", "Sales order"),
    "orders.timeline": ("Historique", "Timeline"),
    "orders.timeline_none": ("Rien encore.", "Nothing yet."),
    "orders.update": ("Mise à jour n°\u00a0{id}", "Update {id}"),
    "orders.pull": ("Module (pull)", "Module (pull)"),
    "orders.pull_acked": ("acquittée le {when}", "acknowledged on {when}"),
    "orders.pull_pending": ("en attente d'acquittement", "waiting for acknowledgement"),
    "orders.push": ("Envoi à la boutique", "Push to the shop"),
    "orders.push.pending": ("en attente", "pending"),
    "orders.push.pushed": ("envoyée", "pushed"),
    "orders.push.failed": ("en échec", "failed"),
    "orders.push_attempts": ("{count} essai(s)", "{count} attempt(s)"),
    "orders.push_answer": ("Réponse de la boutique", "Shop's answer"),
    "orders.event.shop_state_changed": ("Statut changé dans la boutique", "State changed in the shop"),
    "orders.event.tracking_from_shop": ("Numéro de suivi venu de la boutique", "Tracking number from the shop"),
    "orders.deliveries": ("Livraisons", "Deliveries"),
    # --- renvoyer: failed pushes sent again ---
    "orders.event.push_retried": ("Renvoi demandé des envois en échec", "Failed pushes sent again on request"),
    "push_retry.order": ("Renvoyer", "Send again"),
    "push_retry.order_help": (
        "{count} mise(s) à jour en échec : elles repartent au prochain envoi. "
        "La boutique est relue avant chaque écriture : rien n'est envoyé deux fois.",
        "{count} failed update(s): they go again at the next push. The shop is read before each write: nothing is sent twice.",
    ),
    "push_retry.all": ("Tout renvoyer", "Send all again"),
    "push_retry.all_help": (
        "Les mises à jour en échec de toutes les commandes repartent au prochain envoi, une fois la cause corrigée.",
        "The failed updates of every order go again at the next push, once the cause is fixed.",
    ),
    "push_retry.done": (
        "{count} mise(s) à jour en échec renvoyée(s) : elles partiront au prochain envoi.",
        "{count} failed update(s) sent again: they go at the next push.",
    ),
    "push_retry.none": ("Aucune mise à jour en échec : rien à renvoyer.", "No failed update: nothing to send again."),
    "push_retry.not_configured": (
        "Aucune boutique configurée (PRESTASHOP_URL) : rien ne peut être renvoyé.",
        "No shop configured (PRESTASHOP_URL): nothing can be sent again.",
    ),
    "push_retry.shop_not_connected": (
        "La boutique de cette commande n'est pas connectée (adresse du webservice et clé) : rien ne peut être renvoyé.",
        "This order's shop is not connected (webservice address and key): nothing can be sent again.",
    ),
    # --- document types ---
    "doc.1": ("Bon de commande", "Sales order"),
    "doc.2": ("Préparation de livraison", "Delivery preparation"),
    "doc.3": ("Bon de livraison", "Delivery note"),
    "doc.4": ("Bon de retour", "Return note"),
    "doc.5": ("Bon d'avoir financier", "Credit note"),
    "doc.6": ("Facture", "Invoice"),
    "doc.7": ("Facture comptabilisée", "Posted invoice"),
}

# Messages of check_settings (sync/gescom/settings_check.py, with the rules of sync/core/settings.py), said in French
# (the English text is the validator's own).
_ERRORS_FR: list[tuple[re.Pattern, str]] = [
    (re.compile(r"^must be true or false$"), "doit être coché ou décoché"),
    (
        re.compile(r"^sending tracking numbers needs a header field or a line field$"),
        "pour envoyer le numéro de suivi, choisissez un champ d'entête ou un champ de ligne",
    ),
    (
        re.compile(r"^must be 2 \(préparation de livraison\) or 3 \(bon de livraison\)$"),
        "choisissez le bon de livraison ou la préparation de livraison",
    ),
    (re.compile(r"^must be a shop order state id .*$"), "choisissez un statut de la liste, ou « Ne pas modifier le statut »"),
    (re.compile(r"^unknown order state (\S+); known: (.*)$"), r"le statut \1 n'existe pas dans la boutique ; statuts connus : \2"),
    (re.compile(r"^must be the name of a (\w+) column$"), r"choisissez un champ de \1"),
    (
        re.compile(r"^GesCom is unreachable: field names cannot be checked now$"),
        "GesCom ne répond pas : le champ ne peut pas être vérifié maintenant",
    ),
    (re.compile(r"^'(.*)' is not a text column in (\w+)\..*$", re.S), r"« \1 » n'est pas un champ texte de \2"),
    (re.compile(r"^'(.*)' does not exist in (\w+)\..*$", re.S), r"« \1 » n'existe pas dans \2"),
]


def t(key: str, lang: str = DEFAULT_LANGUAGE, /, **values) -> str:
    pair = MESSAGES.get(key)
    if pair is None:
        return key
    text = pair[LANGUAGES.index(lang) if lang in LANGUAGES else 0] or pair[0]
    return text.format(**values) if values else text


def settings_error(message: str, lang: str) -> str:
    """A message of check_settings (sync/gescom/settings_check.py) in the page's language (unknown ones as they are)."""
    if lang != "fr":
        return message
    for pattern, french in _ERRORS_FR:
        if pattern.match(message):
            return pattern.sub(french, message, count=1)
    return message


# --- webhooks to consumers (updates.available): the page of endpoints and delivery attempts ---
MESSAGES.update(
    {
        "nav.webhooks": ("Webhooks", "Webhooks"),
        "webhooks.title": ("Webhooks vers le module", "Webhooks to the module"),
        "webhooks.intro": (
            "Chaque clé consommatrice peut déclarer une adresse HTTPS : quand des mises à jour l'attendent, elle reçoit un "
            "événement signé « updates.available », réessayé en cas d'échec. Le module continue d'interroger le flux sans lui.",
            "Each consumer key may register an HTTPS endpoint: when updates wait for it, it gets one signed “updates.available” "
            "event, retried on failure. The module still polls the feed without it.",
        ),
        "webhooks.none": (
            "Aucune adresse déclarée. Le module la déclare par PUT /api/v1/consumer/webhook.",
            "No endpoint registered. The module registers one with PUT /api/v1/consumer/webhook.",
        ),
        "webhooks.revoked": ("clé révoquée", "key revoked"),
        "webhooks.url": ("Adresse", "URL"),
        "webhooks.registered": ("Déclarée le", "Registered"),
        "webhooks.notified_head": ("Dernière tête annoncée", "Last head told"),
        "webhooks.pending": ("Événement en attente", "Pending event"),
        "webhooks.pending_yes": ("tête {head}, {attempts} échec(s)", "head {head}, {attempts} failure(s)"),
        "webhooks.pending_no": ("aucun", "none"),
        "webhooks.next_attempt": ("prochain essai", "next attempt"),
        "webhooks.attempts": ("Derniers envois", "Latest attempts"),
        "webhooks.no_attempt": ("Aucun envoi pour l'instant.", "No attempt yet."),
        "webhooks.col.when": ("Date", "When"),
        "webhooks.col.event": ("Événement", "Event"),
        "webhooks.col.head": ("Tête", "Head"),
        "webhooks.col.attempt": ("Essai", "Attempt"),
        "webhooks.col.result": ("Résultat", "Result"),
        "webhooks.col.duration": ("Durée", "Duration"),
        "webhooks.delivered": ("reçu", "delivered"),
        "webhooks.failed": ("échec", "failed"),
    }
)


# --- shops (issue 16): the selector, the dashboard per shop, the Boutiques page ---
MESSAGES.update(
    {
        "nav.shops": ("Boutiques", "Shops"),
        "shops.choice": ("Boutique affichée", "Shop shown"),
        "shops.choose": ("Afficher", "Show"),
        "shops.choice_help": (
            "Les réglages et les statuts sont ceux de cette boutique.",
            "The settings and order states are this shop's.",
        ),
        "shops.title": ("Boutiques", "Shops"),
        "shops.intro": (
            "Les boutiques PrestaShop dont la société Sage reçoit les commandes. Chaque boutique a une règle qui dit quels "
            "documents Sage sont les siens ; deux boutiques ne peuvent jamais réclamer le même document.",
            "The PrestaShop shops whose orders the Sage company holds. Each shop has a rule saying which Sage documents are "
            "its own; two shops can never claim the same document.",
        ),
        "shops.default_takes_all_notice": (
            "La boutique par défaut prend « toutes les commandes ». Avant d'ajouter une deuxième boutique, changez d'abord sa "
            "règle (par exemple « Souche 0 » ou « Préfixe WEB- ») : sinon un même document irait aux deux boutiques.",
            "The default shop takes “every order”. Before adding a second shop, first change its rule (for instance "
            "“Numbering series 0” or “Prefix WEB-”): otherwise one document would belong to both shops.",
        ),
        "shops.default_takes_all": (
            "La boutique par défaut prend encore « toutes les commandes » : changez d'abord sa règle, puis ajoutez cette boutique.",
            "The default shop still takes “every order”: change its rule first, then add this shop.",
        ),
        "shops.edit_default": ("Modifier la boutique par défaut", "Edit the default shop"),
        "shops.col.code": ("Code", "Code"),
        "shops.col.name": ("Nom", "Name"),
        "shops.col.rule": ("Règle", "Rule"),
        "shops.col.id_shop": ("id_shop", "id_shop"),
        "shops.col.address": ("Adresse du webservice", "Webservice address"),
        "shops.col.mode": ("Mise à jour", "Updates"),
        "shops.col.orders": ("Commandes suivies", "Orders followed"),
        "shops.default": ("par défaut", "default"),
        "shops.edit": ("Modifier", "Edit"),
        "shops.mode.push": ("envoyées à la boutique (push)", "pushed to the shop (push)"),
        "shops.mode.pull": ("relevées par le module (pull)", "pulled by the module (pull)"),
        "shops.from_environment": ("(PRESTASHOP_URL)", "(PRESTASHOP_URL)"),
        "shops.rule.all": ("Toutes les commandes", "Every order"),
        "shops.rule.souche": ("Souche {values}", "Numbering series {values}"),
        "shops.rule.tiers": ("Compte client {values}", "Customer account {values}"),
        "shops.rule.prefix": ("Préfixe {values}", "Prefix {values}"),
        "shops.rule.field": ("Champ {field} = {values}", "Field {field} = {values}"),
        "shops.kind.all": ("Toutes les commandes (une seule boutique)", "Every order (one shop only)"),
        "shops.kind.souche": ("Souche du document (DO_Souche)", "Document numbering series (DO_Souche)"),
        "shops.kind.tiers": ("Compte client (DO_Tiers)", "Customer account (DO_Tiers)"),
        "shops.kind.prefix": ("Préfixe de la valeur de liaison", "Prefix of the link value"),
        "shops.kind.field": ("Valeur d'un champ d'entête ou d'une information libre", "Value of a header field or free field"),
        "shops.add": ("Ajouter une boutique", "Add a shop"),
        "shops.add_submit": ("Ajouter la boutique", "Add the shop"),
        "shops.save": ("Enregistrer", "Save"),
        "shops.back": ("Toutes les boutiques", "All shops"),
        "shops.edit_title": ("Boutique {code}", "Shop {code}"),
        "shops.created": ("Boutique « {code} » ajoutée.", "Shop “{code}” added."),
        "shops.saved": ("Boutique « {code} » enregistrée.", "Shop “{code}” saved."),
        "shops.not_saved": ("La boutique n'a pas été enregistrée. Corrigez :", "The shop was not saved. Please correct:"),
        "shops.field.code": ("Code", "Code"),
        "shops.field.code_help": (
            "Court et définitif : il préfixe les clés de commande de cette boutique (b2b:4711) et les adresses de l'API. "
            "Une lettre minuscule, puis lettres minuscules, chiffres, « _ » ou « - » (20 caractères au plus).",
            "Short and for good: it prefixes this shop's order keys (b2b:4711) and the API's addresses. A lowercase letter, "
            "then lowercase letters, digits, '_' or '-' (20 characters at most).",
        ),
        "shops.field.code_fixed": ("Le code d'une boutique ne change pas.", "A shop's code never changes."),
        "shops.field.name": ("Nom", "Name"),
        "shops.field.name_help": ("Le nom affiché dans ces pages.", "The name shown on these pages."),
        "shops.field.kind": ("Règle : comment Sage reconnaît les documents de cette boutique", "Rule: how Sage tells this shop's documents apart"),
        "shops.field.kind_help": (
            "Toutes les boutiques utilisent la même sorte de règle (une souche chacune, ou un compte client chacune…).",
            "Every shop uses the same kind of rule (a numbering series each, or a customer account each…).",
        ),
        "shops.field.field": ("Champ lu (pour « valeur d'un champ »)", "Field read (for “value of a field”)"),
        "shops.field.field_help": (
            "Le nom de la colonne de F_DOCENTETE, par exemple « Boutique » (une information libre) ou DO_Coord04.",
            "The F_DOCENTETE column's name, for instance “Boutique” (a free field) or DO_Coord04.",
        ),
        "shops.field.values": ("Valeurs, une par ligne", "Values, one per line"),
        "shops.field.values_help": (
            "Souche : son numéro (0, 1…). Compte client : le code du tiers. Préfixe : le début de la valeur de liaison "
            "(B2B-), un seul. Champ : les valeurs qui désignent cette boutique.",
            "Numbering series: its number (0, 1…). Customer account: the account code. Prefix: the start of the link value "
            "(B2B-), only one. Field: the values that name this shop.",
        ),
        "shops.field.id_shop": ("id_shop PrestaShop (multiboutique)", "PrestaShop id_shop (multistore)"),
        "shops.field.id_shop_help": (
            "Seulement si plusieurs boutiques partagent une même installation PrestaShop. Sinon, laissez vide.",
            "Only when several shops share one PrestaShop installation. Otherwise leave empty.",
        ),
        "shops.field.prestashop_url": ("Adresse du webservice (envoi à la boutique)", "Webservice address (push to the shop)"),
        "shops.field.prestashop_url_help": (
            "Par exemple https://pro.example.fr. La clé du webservice n'est jamais enregistrée ici : elle vient de la variable "
            "d'environnement {variable} du serveur. Laissez vide si le module relève les mises à jour (pull).",
            "For instance https://pro.example.fr. The webservice key is never stored here: it comes from the server's "
            "environment variable {variable}. Leave empty when the module pulls the updates.",
        ),
        "shops.variable_of_new": ("PRESTASHOP_API_KEY_<CODE>", "PRESTASHOP_API_KEY_<CODE>"),
        "dashboard.shops": ("Boutiques", "Shops"),
        "dashboard.shops_selected": ("affichée", "shown"),
        "dashboard.shops_pending_acks": ("En attente d'acquittement", "Waiting for acknowledgement"),
        "dashboard.shops_push_pending": ("En attente d'envoi", "Waiting to be pushed"),
        "dashboard.shops_push_failed": ("En échec", "Failed"),
        "settings.for_shop": ("Réglages de la boutique {name} ({code}).", "Settings of shop {name} ({code})."),
        "settings.shared": (
            "Commun à toutes les boutiques : ce réglage dit où la société Sage range cette information. Il se change dans "
            "les réglages de la boutique par défaut.",
            "Shared by every shop: this setting says where the Sage company keeps this information. Change it in the default shop's settings.",
        ),
        "orders.shop": ("Boutique", "Shop"),
    }
)

# Messages of the shops' checks (sync/core/shops.py, sync/store/shops.py), said in French.
_SHOP_ERRORS_FR: list[tuple[re.Pattern, str]] = [
    (
        re.compile(r"^must be 1 to 20 characters: a lowercase letter.*$"),
        "de 1 à 20 caractères : une lettre minuscule, puis des lettres minuscules, des chiffres, « _ » ou « - »",
    ),
    (re.compile(r"^must be 1 to (\d+) characters$"), r"de 1 à \1 caractères"),
    (re.compile(r"^must be one of .*$"), "choisissez une règle de la liste"),
    (re.compile(r"^is required: one of .*$"), "choisissez une règle de la liste"),
    (re.compile(r"^must be the name of a F_DOCENTETE column.*$"), "indiquez le nom d'un champ de F_DOCENTETE (sans espace au début ni à la fin)"),
    (
        re.compile(r"^(\S+) is one of Sage's technical columns.*$"),
        r"\1 est un champ technique de Sage : choisissez un champ d'entête ou une information libre",
    ),
    (re.compile(r"^must list at least one value$"), "indiquez au moins une valeur"),
    (re.compile(r"^must hold exactly one prefix$"), "indiquez un seul préfixe"),
    (
        re.compile(r"^must be a numbering series \(DO_Souche\): an integer from 0 to (\d+)$"),
        r"indiquez une souche (DO_Souche) : un nombre entier de 0 à \1",
    ),
    (re.compile(r"^must be a customer account \(DO_Tiers\): 1 to (\d+) characters$"), r"indiquez un compte client (DO_Tiers) : 1 à \1 caractères"),
    (
        re.compile(r"^must be the start of the link value .*: 1 to (\d+) characters.*$"),
        r"indiquez le début de la valeur de liaison (par exemple B2B-) : 1 à \1 caractères, sans espace au début ni à la fin",
    ),
    (re.compile(r"^must be a text of 1 to (\d+) characters$"), r"indiquez un texte de 1 à \1 caractères"),
    (re.compile(r"^(.*) repeats values\.\d+ .*$"), r"\1 est déjà dans la liste"),
    (re.compile(r"^must be a PrestaShop shop id .*$"), "indiquez l'id_shop PrestaShop (un nombre entier positif) ou laissez vide"),
    (
        re.compile(r"^must be the shop's http\(s\):// address .*$"),
        "indiquez l'adresse http(s):// de la boutique (sans utilisateur, paramètres ni ancre) ou laissez vide",
    ),
    (re.compile(r"^'(.*)' is already the code of a shop$"), r"« \1 » est déjà le code d'une boutique"),
    (re.compile(r"^'all' claims every document: only a shop alone can use it$"), "« toutes les commandes » ne convient qu'à une boutique seule"),
    (
        re.compile(r"^must be '(\w+)' like shop '(.*?)':.*$", re.S),
        r"même sorte de règle que la boutique « \2 » (\1) obligatoire : sinon un document pourrait aller à deux boutiques",
    ),
    (re.compile(r"^must be (\S+) like shop '(.*?)':.*$", re.S), r"doit être le champ \1, comme pour la boutique « \2 »"),
    (re.compile(r"^(.*) is already claimed by shop '(.*?)'.*$"), r"\1 appartient déjà à la boutique « \2 »"),
    (
        re.compile(r"^(.*) starts with (.*), the prefix of shop '(.*?)':.*$"),
        r"\1 commence par \2, le préfixe de la boutique « \3 » : une même valeur de liaison irait aux deux",
    ),
    (
        re.compile(r"^is required: shops (.*) share one PrestaShop installation.*$"),
        r"obligatoire : les boutiques \1 partagent une même installation PrestaShop (multiboutique)",
    ),
    (re.compile(r"^(\d+) is already the id_shop of shop '(.*?)'.*$"), r"\1 est déjà l'id_shop de la boutique « \2 » sur la même installation"),
]
_WITHIN = re.compile(r"^with this shop, (.*?) would not be valid: [\w.]+: (.*)$", re.S)


def shop_error(message: str, lang: str) -> str:
    """A message of the shops' checks in the page's language (unknown ones as they are)."""
    if lang != "fr":
        return message
    within = _WITHIN.match(message)
    if within:
        names = within.group(1).replace("shop '", "la boutique « ").replace("'", " »").replace("the shops", "les boutiques")
        return f"avec cette boutique, {names} ne conviendrait plus : {shop_error(within.group(2), lang)}"
    for pattern, french in _SHOP_ERRORS_FR:
        if pattern.match(message):
            return pattern.sub(french, message, count=1)
    return message


# --- conflicts with the shop (issue 17): the dashboard, the order page, the settings ---
MESSAGES.update(
    {
        "conflicts.title": ("Conflits avec la boutique", "Conflicts with the shop"),
        "conflicts.intro": (
            "La boutique a mis ces commandes dans un état que vous avez réservé (annulée, remboursée, erreur de paiement, ou un "
            "état choisi dans les réglages) : les mises à jour venues de Sage sont retenues, rien n'est envoyé (statut, numéro "
            "de suivi, message, e-mail) tant que vous n'avez pas décidé. Si l'état change dans la boutique, elles repartent seules.",
            "The shop put these orders in a state you reserved (cancelled, refunded, payment error, or a state chosen in the "
            "settings): the updates from Sage are held, nothing is sent (status, tracking number, message, e-mail) until you "
            "decide. If the state changes in the shop, they go on their own.",
        ),
        "conflicts.cut": ("Les {shown} plus anciens sont affichés, sur {total}.", "The {shown} oldest are shown, of {total}."),
        "conflicts.since": ("depuis le {when}", "since {when}"),
        "conflicts.sage_says": ("Sage dit", "Sage says"),
        "conflicts.sage_state": ("mettrait l'état « {state} »", "would set state “{state}”"),
        "conflicts.sage_no_state": ("ne change pas l'état", "does not change the state"),
        "conflicts.sage_tracking": ("suivi", "tracking"),
        "conflicts.shop_says": ("La boutique dit", "The shop says"),
        "conflicts.why": ("Pourquoi", "Why"),
        "conflicts.reason.PS_OS_CANCELED": ("Annulée dans la boutique", "Cancelled in the shop"),
        "conflicts.reason.PS_OS_REFUND": ("Remboursée", "Refunded"),
        "conflicts.reason.PS_OS_ERROR": ("Erreur de paiement", "Payment error"),
        "conflicts.reason.conflict_states": ("État choisi dans les réglages", "State chosen in the settings"),
        "conflicts.apply": ("Appliquer quand même", "Apply anyway"),
        "conflicts.apply_help": (
            "« Appliquer quand même » : la mise à jour part telle quelle, une fois, quel que soit l'état de la boutique.",
            "“Apply anyway”: the update goes as it is, once, whatever the shop's state.",
        ),
        "conflicts.dismiss": ("Ignorer", "Dismiss"),
        "conflicts.dismiss_help": (
            "« Ignorer » : rien n'est envoyé pour cette mise à jour ; les suivantes seront jugées à leur tour.",
            "“Dismiss”: nothing is sent for this update; the next ones are judged in turn.",
        ),
        "conflicts.applied": (
            "Mise à jour n°\u00a0{id} de la commande {key} appliquée quand même : elle part au prochain envoi.",
            "Update {id} of order {key} applied anyway: it goes at the next push.",
        ),
        "conflicts.dismissed": (
            "Mise à jour n°\u00a0{id} de la commande {key} ignorée : rien ne sera envoyé pour elle.",
            "Update {id} of order {key} dismissed: nothing will be sent for it.",
        ),
        "conflicts.not_found": ("Aucune mise à jour n°\u00a0{id}.", "No update {id}."),
        "conflicts.never": (
            "La mise à jour n°\u00a0{id} n'est pas en conflit : rien n'a été changé.",
            "Update {id} is not in conflict: nothing was changed.",
        ),
        "conflicts.ended.applied_anyway": (
            "Ce conflit est déjà terminé : la mise à jour n°\u00a0{id} a déjà été appliquée quand même. Rien n'a été changé.",
            "This conflict has already ended: update {id} was already applied anyway. Nothing was changed.",
        ),
        "conflicts.ended.dismissed": (
            "Ce conflit est déjà terminé : la mise à jour n°\u00a0{id} a déjà été ignorée. Rien n'a été changé.",
            "This conflict has already ended: update {id} was already dismissed. Nothing was changed.",
        ),
        "conflicts.ended.released": (
            "Ce conflit est déjà terminé : l'état de la boutique a changé et la mise à jour n°\u00a0{id} est repartie. Rien n'a été changé.",
            "This conflict has already ended: the shop's state changed and update {id} went on. Nothing was changed.",
        ),
        "conflicts.status.open": ("en conflit : retenue", "in conflict: held"),
        "conflicts.status.applied_anyway": ("appliquée quand même", "applied anyway"),
        "conflicts.status.dismissed": ("ignorée", "dismissed"),
        "conflicts.status.released": ("conflit levé", "conflict released"),
        "conflicts.seen": ("Vu par", "Seen by"),
        "conflicts.seen_by.push": ("l'envoi (la boutique relue avant d'écrire)", "the push (the shop read before writing)"),
        "conflicts.seen_by.webhook": ("le module (changement d'état)", "the module (state change)"),
        "conflicts.seen_by.run": ("la synchronisation", "the run"),
        "conflicts.via": ("Depuis", "Through"),
        "conflicts.via.admin": ("cette page", "this page"),
        "conflicts.via.api": ("l'API", "the API"),
        "conflicts.reissued_as": ("Envoyée à nouveau au module", "Issued again to the module"),
        "orders.conflict": ("Conflit", "Conflict"),
        "orders.push.conflict": ("en conflit", "in conflict"),
        "orders.push.dismissed": ("ignorée", "dismissed"),
        "orders.event.updates": ("Mises à jour", "Updates"),
        "orders.event.conflict_opened": ("Conflit : mise à jour retenue", "Conflict: update held"),
        "orders.event.conflict_applied_anyway": ("Appliquée quand même par {by}", "Applied anyway by {by}"),
        "orders.event.conflict_dismissed": ("Ignorée par {by}", "Dismissed by {by}"),
        "orders.event.conflict_released": ("Conflit levé : l'état de la boutique a changé", "Conflict released: the shop's state changed"),
        "dashboard.push_conflict": ("En conflit", "In conflict"),
        "dashboard.push_dismissed": ("Ignorées", "Dismissed"),
        "dashboard.shops_conflicts": ("{count} en conflit", "{count} in conflict"),
        "settings.section.conflicts": ("Conflits avec la boutique", "Conflicts with the shop"),
        "settings.conflict_states": ("États de la boutique qui retiennent les mises à jour", "Shop states that hold the updates"),
        "settings.conflict_states_help": (
            "Quand la boutique a mis une commande dans l'un de ces états, les mises à jour venues de Sage sont retenues : rien "
            "n'est envoyé tant que vous n'avez pas décidé sur le tableau de bord. Les états annulée, remboursée et erreur de "
            "paiement de la boutique comptent toujours.",
            "When the shop put an order in one of these states, the updates from Sage are held: nothing is sent until you decide "
            "on the dashboard. The shop's cancelled, refunded and payment error states always count.",
        ),
        "settings.conflict_states_always": ("toujours", "always"),
    }
)

# The checks of `conflict_states` (sync/core/settings.py), said in French; before the single state's message.
_ERRORS_FR[:0] = [
    (re.compile(r"^unknown order states (.*); known: (.*)$"), r"les statuts \1 n'existent pas dans la boutique ; statuts connus : \2"),
    (re.compile(r"^must be a list of shop order state ids .*$"), "cochez des statuts de la liste"),
]
