"""The Telegram layer shared by the bot, the workers and the web server: the Bot factory
(:mod:`tg.factory`), the token-safe session (:mod:`tg.session`), the pinned response models
(:mod:`tg.response_models`), the one classification of Telegram's errors (:mod:`tg.errors`)
and the one retry and flood-wait rule (:mod:`tg.retry`)."""
