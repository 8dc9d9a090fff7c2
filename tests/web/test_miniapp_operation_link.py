"""The Mini App's operations page links each delivered result back to the chat: a t.me link
that starts the bot with op_<id> (the username from getMe), only where a result message was
recorded."""

from __future__ import annotations

from billing import accounts, operations
from tests.web.conftest import Stack
from tests.web.miniapp import caller


async def test_a_delivered_result_has_a_link_back_to_the_chat(stack: Stack) -> None:
    user_id, _ = await stack.new_user(7401)
    async with stack.sessionmaker() as session:
        await accounts.adjust(session, user_id=user_id, reason="test", amount=5_000)
        done = await operations.charge(
            session, stack.settings, user_id=user_id, op_type="upscale", chat_id=7401
        )
        queued = await operations.charge(
            session, stack.settings, user_id=user_id, op_type="upscale", request_key="q"
        )
        await operations.complete_operation(
            session, operation_id=done.operation_id, result_ref={"photo_message_id": 12}
        )
        await session.commit()
    status, body = await caller(stack, 7401).get("/app/api/operations")
    assert status == 200
    links = {o["id"]: o["chat_link"] for o in body["items"]}
    username = (await stack._bot.me()).username  # type: ignore[attr-defined]
    assert username
    assert links == {
        done.operation_id: f"https://t.me/{username}?start=op_{done.operation_id}",
        queued.operation_id: None,
    }
