# Shared texts used by every process.
currency-rub = { $amount } ₽
