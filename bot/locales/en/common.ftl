currency-rub = { $amount } ₽
