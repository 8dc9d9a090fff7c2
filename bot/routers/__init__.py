"""One router per feature; bot.app wires them in this order (the fallback goes last)."""
