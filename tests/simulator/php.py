"""PHP, MySQL and PrestaShop helpers the simulated webservice behaves by: casts, truthiness, Validate::*, the
"did you mean" suggestion, the $_GET array syntax. Each says which PrestaShop or PHP behaviour it copies."""

from __future__ import annotations

import re
from datetime import datetime


def php_truthy(value) -> bool:
    """PHP (bool) of a request string: "" and "0" are false, anything else ("false" included) is true."""
    return value is not None and value not in ("", "0")


def php_falsy(value) -> bool:
    """What array_filter() drops: null, "", "0", 0 (but not "0.000000")."""
    return value is None or value == "" or value == "0" or (isinstance(value, (int, float)) and not value)


def php_int(value) -> int:
    """PHP (int) cast of a string: leading integer, else 0."""
    match = re.match(r"\s*([+-]?\d+)", str(value))
    return int(match.group(1)) if match else 0


def mysql_number(value) -> float:
    """MySQL's string-to-number conversion: the leading numeric prefix, else 0."""
    match = re.match(r"\s*([+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?)", str(value))
    return float(match.group(1)) if match else 0.0


def mysql_decimal(value) -> str:
    """A decimal(20,6) column as MySQL gives it back: six decimals."""
    return f"{float(value):.6f}"


def html_escaped(text: str) -> str:
    """htmlspecialchars(ENT_NOQUOTES): what the translator does to ObjectModel validation messages on 8.x
    (recorded: order_carrier_patch_invalid_tracking_json answers "OrderCarrier-&gt;tracking_number")."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def levenshtein(a: str, b: str) -> int:
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def did_you_mean(label: str, value: str, choices: list[str]) -> str:
    """WebserviceRequest::setErrorDidYouMean: ties go to the last closest word (recorded:
    orders_filter_unknown_field suggests "note" for "foo")."""
    closest, shortest = "", -1
    for word in choices:
        distance = levenshtein(value, word)
        if distance == 0:
            closest = word
            break
        if distance <= shortest or shortest < 0:
            closest, shortest = word, distance
    text = f'{label}. Did you mean: "{closest}"?'
    if len(choices) > 1:
        text += ' The full list is: "' + '", "'.join(choices) + '"'
    return text


# Validate::* (classes/Validate.php). Python's `$` matches before a final newline exactly like PHP's
# (no D modifier), so "ABC\n" passes isTrackingNumber as it does in PrestaShop; a pretty-printed value
# ("\n  ABC\n") fails because of its leading newline and spaces (reference §2.3, §3.3).
_TRACKING = re.compile(r"^[~:#,%&_=\(\)\[\]\.\? \+\-@/a-zA-Z0-9]+$")
_DATE = re.compile(r"^([0-9]{4})-((0?[0-9])|(1[0-2]))-((0?[0-9])|([1-2][0-9])|(3[01]))( [0-9]{2}:[0-9]{2}:[0-9]{2})?$")
_FLOAT = re.compile(r"^\s*[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\s*$")
_EMAIL = re.compile(r"^[a-z0-9!#$%&'*+/=?^`{}|~_-]+[.a-z0-9!#$%&'*+/=?^`{}|~_-]*@[a-z0-9]+(?:[.]?[_a-z0-9-])*\.[a-z0-9]+$", re.I)


# Validate::isCleanHtml (1.7, 8 and 9 alike), PS_ALLOW_HTML_IFRAME off: its event list, its patterns and their
# flags `ims`. PHP matches bytes without the u modifier: \s and the case-folding are ASCII (re.ASCII). An event
# name is refused before `=` anywhere in the text, inside a tag or not, and `script:` with any prefix.
_EVENTS = (
    "onmousedown|onmousemove|onmmouseup|onmouseover|onmouseout|onload|onunload|onfocus|onblur|onchange"
    "|onsubmit|ondblclick|onclick|onkeydown|onkeyup|onkeypress|onmouseenter|onmouseleave|onerror|onselect|onreset|onabort|ondragdrop"
    "|onresize|onactivate|onafterprint|onmoveend|onafterupdate|onbeforeactivate|onbeforecopy|onbeforecut|onbeforedeactivate"
    "|onbeforeeditfocus|onbeforepaste|onbeforeprint|onbeforeunload|onbeforeupdate|onmove|onbounce|oncellchange|oncontextmenu"
    "|oncontrolselect|oncopy|oncut|ondataavailable|ondatasetchanged|ondatasetcomplete|ondeactivate|ondrag|ondragend|ondragenter"
    "|onmousewheel|ondragleave|ondragover|ondragstart|ondrop|onerrorupdate|onfilterchange|onfinish|onfocusin|onfocusout"
    "|onhashchange|onhelp|oninput|onlosecapture|onmessage|onmouseup|onmovestart|onoffline|ononline|onpaste|onpropertychange"
    "|onreadystatechange|onresizeend|onresizestart|onrowenter|onrowexit|onrowsdelete|onrowsinserted|onscroll|onsearch"
    "|onselectionchange|onselectstart|onstart|onstop"
)
_PHP_IMS = re.I | re.M | re.S | re.ASCII
_UNCLEAN_HTML = (
    re.compile(r"<[\s]*script", _PHP_IMS),
    re.compile(r"(" + _EVENTS + r")[\s]*=", _PHP_IMS),
    re.compile(r".*script\:", _PHP_IMS),
    re.compile(r"<[\s]*(i?frame|form|input|embed|object)", _PHP_IMS),
)


def is_clean_html(value: str) -> bool:
    """Validate::isCleanHtml($html, $allow_iframe = false)."""
    return not any(pattern.search(value) for pattern in _UNCLEAN_HTML)


def _is_date(value: str) -> bool:
    match = _DATE.match(value)
    if not match:
        return False
    try:
        datetime(int(match.group(1)), int(match.group(2)), int(match.group(5)))
    except ValueError:
        return False
    return True


VALIDATORS = {
    "isUnsignedId": lambda v: bool(re.fullmatch(r"\d+", v)) and int(v) < 4294967296,
    "isFloat": lambda v: bool(_FLOAT.match(v)),
    "isTrackingNumber": lambda v: bool(_TRACKING.match(v)),
    "isDate": _is_date,
    "isBool": lambda v: bool(re.match(r"^(0|1)$", v)),
    "isCleanHtml": lambda v: is_clean_html(v),
    "isEmail": lambda v: bool(_EMAIL.match(v)),
    "isGenericName": lambda v: not re.search(r"[<>={}]", v),
    "isIp2Long": lambda v: bool(re.match(r"^-?[0-9]+$", v)),
}


def cdata(value) -> str:
    return "<![CDATA[" + str(value).replace("]]>", "]]]]><![CDATA[>") + "]]>"


def php_params(pairs: list[tuple[str, str]]) -> dict:
    """$_GET as PHP builds it: `filter[id_order]=[5]` becomes {"filter": {"id_order": "[5]"}}; last value wins."""
    params: dict = {}
    for key, value in pairs:
        match = re.fullmatch(r"([^\[\]]+)((?:\[[^\]]*\])+)", key)
        if not match:
            params[key] = value
            continue
        subs = re.findall(r"\[([^\]]*)\]", match.group(2))
        node = params.get(match.group(1))
        if not isinstance(node, dict):
            node = params[match.group(1)] = {}
        for sub in subs[:-1]:
            child = node.get(sub)
            if not isinstance(child, dict):
                child = node[sub] = {}
            node = child
        node[subs[-1]] = value
    return params
