"""The Telegram layer shared by the bot, the workers and the web server: the Bot factory
(:mod:`tg.factory`), the token-safe session (:mod:`tg.session`), the pinned response models
(:mod:`tg.response_models`) and the retry rule for 429 / 5xx (:mod:`tg.retry`)."""
