"""A write counts only when the shop's answer holds the record written; a 3xx is never followed."""

from __future__ import annotations

import pytest
import requests

from sync.prestashop.client import PrestaShopClient, ShopAmbiguous, ShopRedirect, _holds


def test_an_answer_holding_the_record_written_is_taken():
    answer = {"order_history": {"id": "10", "id_order": "4", "id_order_state": 3}}  # recorded: ints and strings mixed
    assert _holds(answer, "order_history", "x", id_order=4, id_order_state=3) is answer


@pytest.mark.parametrize(
    "answer",
    [
        {},  # a 2xx with an empty body
        {"order_history": {"id_order": "4", "id_order_state": 3}},  # no id: nothing was created
        {"order_history": {"id": "10", "id_order": "4", "id_order_state": 2}},  # another record
        {"order": {"id": "4"}},  # another resource
        "<html>Proxy</html>",
    ],
)
def test_anything_else_is_ambiguous(answer):
    with pytest.raises(ShopAmbiguous):
        _holds(answer, "order_history", "x", id_order=4, id_order_state=3)


class _Redirecting(requests.Session):
    def request(self, method, url, **kwargs):
        assert kwargs.get("allow_redirects") is False  # never followed, whatever the method
        response = requests.Response()
        response.status_code, response.url = 301, url
        response.headers["Location"] = url.replace("http://", "https://")
        return response


def test_a_redirect_names_the_address_to_use():
    client = PrestaShopClient("http://shop.example", "K" * 32, session=_Redirecting(), sleep=lambda seconds: None)
    with pytest.raises(ShopRedirect) as caught:
        client.write("POST", "order_histories", "<prestashop/>")
    assert "https://shop.example/api/order_histories" in str(caught.value) and "PRESTASHOP_URL" in str(caught.value)
