"""Every text the users read, in Fluent locales (texts/locales/<lang>/*.ftl), with one
``t()`` (:mod:`texts.i18n`): Russian by default, English for English users. Imported by
the bot, the workers and the web server; imports no process package."""
