"""The user's refund line names the source: the subscription or package the units went
back to, or that they were not carried into a new period / an ended package (ru and en)."""

from __future__ import annotations

import pytest

from billing.models import Funding
from billing.operations import RefundResult
from workers import messages


def refund(funding: Funding, **kw) -> RefundResult:
    values = {
        "operation_id": 1,
        "user_id": 1,
        "funding": funding,
        "amount": 0,
        "free_back": 0,
        "balance_after": 500,
        "free_after": 0,
    }
    values.update(kw)
    return RefundResult(**values)


@pytest.mark.parametrize(
    ("result", "ru", "en"),
    [
        (
            refund(Funding.SUBSCRIPTION, units_back=2, units_after=18),
            "Операция возвращена в подписку. Осталось в подписке: 18.",
            "The operation is back in your subscription. Left in your subscription: 18.",
        ),
        (
            refund(Funding.PACKAGE, units_back=1, units_after=7),
            "Операция возвращена в пакет. Осталось в пакете: 7.",
            "The operation is back in your package. Left in your package: 7.",
        ),
        (
            refund(Funding.SUBSCRIPTION, not_carried="period_over", units_after=30),
            "не перенесена в новый период",
            "not carried over into the new period",
        ),
        (
            refund(Funding.PACKAGE, not_carried="plan_ended", units_after=0),
            "из пакета, который уже закончился",
            "a package that has ended",
        ),
    ],
)
def test_the_refund_line_says_where_the_operation_went(result, ru, en):
    assert ru in messages.refund_line(result, "ru")
    assert en in messages.refund_line(result, "en")


def test_the_result_caption_says_what_the_quota_has_left():
    line = messages.cost_line(
        funding="subscription",
        price=0,
        balance=1000,
        free_left=0,
        language="ru",
        units=2,
        units_left=18,
    )
    assert line == "Списано 2 операции из подписки, осталось 18. Баланс: 10 ₽."
    line = messages.cost_line(
        funding="package", price=0, balance=0, free_left=0, language="en", units=1, units_left=9
    )
    assert line == "1 operation taken from the package, 9 left. Balance: 0 ₽."
