# The bot's conversation (bot/). Keys start with "bot-"; ru/bot.ftl has the same keys.
# Money arrives formatted (billing.prices.format_rub), counts as numbers.

## Commands (setMyCommands)
bot-cmd-start = Main menu
bot-cmd-help = What the bot does and what it costs
bot-cmd-balance = Balance and top-up
bot-cmd-menu = Show the menu
bot-cmd-plans = Plans: subscriptions and packages
bot-cmd-history = History of charges and top-ups
bot-cmd-settings = Settings
bot-cmd-paysupport = Help with a payment
bot-cmd-privacy = What data the bot keeps

## Main menu buttons
bot-btn-generate = 🎨 Create
bot-btn-edit = ✏️ Edit
bot-btn-merge = 🔗 Merge
bot-btn-face_swap = 🔄 Swap face
bot-btn-retouch = ✨ Retouch
bot-btn-upscale = ⬆️ Upscale
bot-btn-add_text = 📝 Add text
bot-btn-topup = 💰 Pay / Balance
bot-btn-plans = 📋 Plans
bot-btn-menu = 🏠 Menu
bot-btn-webapp = 📱 Open the app
bot-btn-webapp-menu = Account
bot-btn-topup-now = 💳 Top up
bot-btn-amount = { $amount } ₽
bot-btn-custom-amount = ✍️ Another amount
bot-btn-cancel = ✖️ Cancel
bot-btn-pay = 💳 Go to payment
bot-btn-check-payment = 🔄 Check payment
# Under the answers of a mode that takes several photos (merge): they send these words.
bot-btn-add-photo = ➕ Add
bot-btn-done = ✅ Done

## Start, menu, help
bot-start =
    Hi, { $name }! 👋 I'm Media Lab — I work magic on photos.

    🎁 Free operations: { $free_left } of { $free_total }
    💳 After that — { $price } ₽ per operation (balance: { $balance } ₽)

    What shall we do?
bot-menu = What shall we do? Pick a mode 👇
bot-pick-mode = So I know what to do with your message, pick a mode first 👇
bot-help =
    <b>What I can do</b>

    { $modes }

    The first { $free_total } operations are free, then { $price } ₽ each. If something fails, the money goes back to your balance.

    /start — main menu
    /balance — balance and top-up
    /plans — plans: subscriptions and packages
    /history — history of charges and top-ups
    /settings — settings (confirm charges)
    /paysupport — help with a payment
    /privacy — what data the bot keeps
    /help — this help
bot-help-generate = 🎨 <b>Create</b> — a picture from a text description.
bot-help-edit = ✏️ <b>Edit</b> — a photo + a command: "b&amp;w", "brightness +20", "rotate right"…
bot-help-merge = 🔗 <b>Merge</b> — 2 to 4 photos side by side in one.
bot-help-face_swap = 🔄 <b>Swap face</b> — the face from the first photo onto the second.
bot-help-retouch = ✨ <b>Retouch</b> — a gentle portrait retouch.
bot-help-upscale = ⬆️ <b>Upscale</b> — twice the size, a little sharper.
bot-help-add_text = 📝 <b>Add text</b> — a caption on the photo.

## Modes
bot-mode-generate = 🎨 Describe the picture in words — for example: "a ginger cat astronaut, watercolor".
bot-mode-edit =
    ✏️ Send a photo with a command as its caption, for example: "b&amp;w, brightness +20".
    Or one after the other: the photo first, then the command.
bot-mode-merge = 🔗 Send 2 to 4 photos — as an album or one by one, then tap "✅ Done". I'll put them side by side.
bot-mode-face_swap = 🔄 Send two photos: the first with the face to take, the second where to put it. An album works too.
bot-mode-retouch = ✨ Send a portrait — I'll retouch it gently.
bot-mode-upscale = ⬆️ Send a photo — I'll make it twice as big and a little sharper.
bot-mode-add_text = 📝 Send a photo with a caption — I'll write that text on the picture. Or the photo first, then the text.
bot-mode-unavailable = This mode is not available right now. Pick another one 👇
bot-price-paid = 💳 Price: { $price } ₽ — or { $ops } of a subscription or package, or one free operation.
bot-price-free = 🆓 Free.

## Input checks (nothing is charged for these)
bot-need-photo = 📷 This needs a photo — send a photo or an image file.
bot-need-photo-first = 📷 Send the photo first, then the text for it.
bot-input-not-image = 🤔 That doesn't look like a picture. Send a photo or a JPEG, PNG or WebP file.
bot-input-too-big = 🐘 The file is too big: up to { $limit } MB, please. Send a smaller one.
bot-input-unreadable = 🤔 I can't open this file as a picture: it is damaged or in another format. Nothing was charged — send a photo or a JPEG, PNG or WebP file.
bot-input-too-many-pixels = 🐘 The picture is too large: up to { $megapixels } MP and { $side } pixels per side. Please send a smaller one.
bot-input-too-small = 🔍 The photo is too small: { $width }×{ $height }. This mode needs at least { $min } pixels on the shorter side. Nothing was charged — please send a bigger one.
bot-input-download-failed = 😔 I couldn't get the file from Telegram. Nothing was charged — please send it again in a minute.
bot-input-command = 🤔 { $command } — I don't know that command, and I don't take a text that starts with "/". Send the text without the "/", or pick a command: /start, /help, /balance, /menu.
bot-pair-need-second = 👍 Got the first photo. Now send the second one.
bot-album-extra = 📎 This mode takes { $count ->
        [1] one photo at a time: I used one from the album
       *[other] two photos at a time: I used two from the album
    }; the others were not used and nothing was charged for them. Send them separately if you need to.
## Several photos (merge: 2 to $max)
bot-several-need-photos = 📷 Send the photos — 2 to { $max }, as an album or one by one.
bot-several-need-more = 👍 Got it. Send at least one more — up to { $max } in all.
bot-several-got = 👍 Photos: { $count } of { $max }. ➕ Send another or tap "✅ Done".
bot-several-got-words = 👍 Photos: { $count } of { $max }. ➕ Send another — or write one sentence on how to combine them.
bot-several-got-album = 👍 Added the album's photos. ➕ Send more (up to { $max } in all) or tap "✅ Done".
bot-several-got-album-words = 👍 Added the album's photos. ➕ Send more (up to { $max } in all) — or write one sentence on how to combine them.
bot-several-add = 📷 Send the next photo: { $count } of { $max } so far.
bot-several-too-many = 📎 This photo was not added: the photos are already collected (at most { $max } at a time). Nothing was charged for it — send it next time if you need to.
bot-several-no-words = 🤔 No words needed here: send another photo or tap "✅ Done".
bot-caption-unused = ✏️ The caption "{ $caption }" was not used: this mode takes no caption.
bot-generate-need-text = ✍️ Describe the picture in text — in one message.
bot-text-need-text = ✍️ Got the photo! Now send the text to write on it.
bot-text-empty = ✍️ The text is empty (or only characters the font doesn't have). Write some words.
bot-text-too-long = ✂️ Too long: up to { $max } characters. Please make it shorter.
bot-upscale-too-big = 🐘 A { $width }×{ $height } photo is too big to upscale. Send a smaller one.
bot-edit-need-instruction = ✍️ Got the photo! Now tell me what to do, for example: "b&amp;w, brightness +20".
bot-edit-empty =
    ✍️ Tell me what to do with the photo. I understand:
    { $commands }
bot-edit-unknown =
    🤔 I didn't understand "{ $fragment }". These are the commands I know:
    { $commands }
bot-edit-bad-value =
    🤔 The number in "{ $fragment }" doesn't fit. Here's what works:
    { $commands }
# One line of the list of commands above ($command is a help line of workers.ftl).
bot-edit-command-line = • { $command }
bot-edit-too-many = ✂️ Too many commands at once — { $max } at most. Split them up.
bot-edit-too-long = ✂️ That command is too long. Please make it shorter.
bot-edit-no-effect = 🤔 "{ $fragment }" would change nothing: a photo does not change by 0%. Say how much, for example: "brightness +20". Nothing was charged.

## Operations
bot-charge-busy = ⏳ Many of your operations are going on at once — this one was not charged or started. Send it again in a couple of seconds.
bot-op-queued-generate = ⏳ Queued: drawing a picture from your description.
bot-op-queued-edit = ⏳ Queued: applying your edits.
bot-op-queued-merge = ⏳ Queued: merging the photos.
bot-op-queued-face_swap = ⏳ Queued: swapping the face.
bot-op-queued-retouch = ⏳ Queued: retouching.
bot-op-queued-upscale = ⏳ Queued: upscaling the photo.
bot-op-queued-add_text = ⏳ Queued: writing the text on the photo.
bot-op-paid =
    { $how ->
        [free] 🎁 A free operation — { $free_left } of { $free_total } left.
        [balance] 💳 Charged { $price } ₽, balance: { $balance } ₽.
        [subscription] 📊 { $units } taken from the subscription, { $units_left } left.
        [package] 📦 { $units } taken from the package, { $units_left } left.
       *[none] 🆓 Free.
    }
    I'll send the result here. The mode stays open — send the next one any time.
bot-op-queue-down = 😔 The queue is unavailable right now, so nothing was started. You were not charged — please try again in a minute.
bot-op-failed-before-queue = 😔 Something went wrong and the operation didn't start. The charge was reversed — please try again.
bot-insufficient =
    😔 Your free operations are used up (all { $free_total } of them).
    An operation costs { $price } ₽ and your balance is { $balance } ₽.
    Top up and let's carry on!
bot-throttled = 🐢 Not so fast! Wait a couple of seconds and try again.
bot-button-outdated = This button no longer works. Open the menu: /start
# 📎 under a result (the file is kept RESULT_FILE_KEEP_SECONDS; a second tap while it uploads)
bot-result-file-gone = The uncompressed file is kept for { $hours } h; this one is gone. The photo above stays.
bot-result-file-sending = The file is on its way.

## Balance and top-up
bot-balance =
    💰 Balance: <b>{ $balance } ₽</b>
    🎁 Free operations: { $free_left } of { $free_total }
    💳 Price per operation: { $price } ₽
bot-topup-choose = How much would you like to add?
bot-topup-not-configured = Top-ups are not available right now — please check back later.
bot-topup-canceled = OK, top-up canceled. What shall we do?
bot-topup-ask-amount = ✍️ Type the amount in rubles — a whole number from { $min } to { $max }.
bot-topup-amount-not-number = 🔢 I need a whole number of rubles, like 250. From { $min } to { $max } ₽.
bot-topup-amount-fraction = 🔢 Whole rubles only, no kopecks — like 250.
bot-topup-amount-too-small = ⬆️ The minimum is { $min } ₽.
bot-topup-amount-too-large = ⬇️ The maximum is { $max } ₽.
bot-topup-ask-email = 📧 The receipt needs an e-mail — send it in one message. I'll only ask once.
bot-topup-email-invalid = 📧 That doesn't look like an e-mail. Send an address like name@example.com.
bot-topup-email-saved = 📧 E-mail saved. Pick an amount in the top-up menu.
bot-topup-creating = ⏳ Creating an invoice for { $amount } ₽…
bot-topup-description = Media Lab: balance top-up of { $amount } ₽
bot-topup-invoice =
    🧾 Your invoice for <b>{ $amount } ₽</b> is ready.
    Tap "Go to payment", and after paying — "Check payment" (or just wait: I'll let you know).
bot-topup-unavailable = 😔 The payment service isn't answering right now. Nothing was charged — please try again in a few minutes.
bot-payment-credited = ✅ Payment received: +{ $amount } ₽. Balance: { $balance } ₽. What shall we do?
bot-payment-credited-short = ✅ { $amount } ₽ added
bot-payment-already = ✅ This payment has already been added. Balance: { $balance } ₽.
bot-payment-pending = ⏳ The payment hasn't arrived yet. If you've paid, wait a minute and tap again.
bot-payment-check-later = ⏳ Couldn't reach the payment service. Please check again in a minute.
bot-payment-problem = 😔 Something is wrong with this payment. Please contact support — we'll sort it out.
bot-error = 😔 Something went wrong. Please try again or open the menu: /start

## /privacy, /paysupport
bot-privacy =
    <b>What data Media Lab keeps</b>

    • Your Telegram id, username and language — to recognise you and answer in your language.
    • An e-mail — only if you gave one for a receipt.
    • Your balance, payments (amount, status, the payment's id at the payment provider or in Telegram) and the history of charges and top-ups — the money records, kept for as long as the service runs.
    • Operations: type, time, price, outcome, the text of your command or prompt, and Telegram's references to your photos (file_id).

    <b>Images</b> are not stored: a photo is downloaded from Telegram only for the time it is processed and stays in the worker's memory. The job record with the photo references is deleted an hour after the job is done (7 days after, if it failed), the note of a delivered result after 7 days. The photos themselves stay with Telegram, in your chat.

    We share no data with third parties other than the payment provider when you pay. Questions — /paysupport.
bot-paysupport =
    <b>Help with a payment</b>

    Your latest payments:
    { $payments }
bot-paysupport-none = no payments yet.
bot-paysupport-payment = #{ $id } · { $date } · { $amount } ₽ · { $status } · { $ref }
bot-paysupport-contact = Contact the operator: { $contact }
bot-paysupport-ask = Describe what happened in one message and I will pass it on to the admin with the ids of your payments. Changed your mind — /menu.
bot-paysupport-sent = ✅ Your message was passed on to the admin. You will get an answer in this chat or through the contact above.
bot-paysupport-not-sent = Your message could not be passed on to the admin. Please try again later.
bot-paysupport-status-pending = awaiting payment
bot-paysupport-status-waiting_for_capture = awaiting confirmation
bot-paysupport-status-succeeded = credited
bot-paysupport-status-canceled = canceled
bot-paysupport-status-refunded = refunded
bot-paysupport-status-failed = not created

## ⭐ Telegram Stars top-ups
bot-btn-stars-pack = ⭐ { $stars } → { $amount } ₽
bot-stars-title = Top-up of { $amount } ₽
bot-stars-description = { $stars } ⭐ — I will credit { $amount } ₽ to your Media Lab balance.
bot-stars-label = { $amount } ₽ to the balance
bot-stars-credited = ✅ Payment received: { $stars } ⭐ → +{ $amount } ₽. Your balance is { $balance } ₽. What shall we do?
bot-stars-refused-unknown = This invoice is not ours or was changed. No Stars were taken. A new invoice: /balance (top-up) or /plans (plan)
bot-stars-refused-not_yours = This invoice was made for another user. No Stars were taken. Your own invoice: /balance (top-up) or /plans (plan)
bot-stars-refused-stale = This invoice is already paid or out of date. No Stars were taken. A new invoice: /balance (top-up) or /plans (plan)
bot-stars-refused-price = The invoice's price does not match the purchase. No Stars were taken. A new invoice: /balance (top-up) or /plans (plan)
bot-stars-refused-plan = This plan is no longer on sale: the invoice was not paid, no Stars were taken. Choose a plan: /plans
bot-stars-plan-title = Plan: { $name }
bot-stars-plan-description = { $stars } ⭐ — the { $name } plan for { $price } ₽. The Stars are credited to your balance as { $amount } ₽, and the plan's price is taken from it at once.
bot-stars-plan-label = Plan: { $name }

## /start op_<id>: the Mini App's link back to an operation's result in the chat.
bot-op-link-result = ⬆️ The result of operation #{ $id }: { $mode }, { $date }.
bot-op-link-refused = You have no such operation with a result.
bot-op-link-gone = The result's message is gone and it cannot be sent again.
