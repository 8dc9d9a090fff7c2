# The worker: progress, results, failures and refunds (workers/messages.py).
worker-processing = ⏳ Processing…

## What was done (the caption's first line; keys are media-result-<op>)
media-result-upscale = ⬆️ Upscaled { $factor }×: { $width }×{ $height }.
media-result-retouch = ✨ Retouched: skin smoothed, levels and contrast balanced.
media-result-edit = ✏️ Done: { $steps }.
media-result-merge = 🔗 Photos merged: { $width }×{ $height }.
media-result-faceswap = 🔄 Face swapped.
media-result-text = 📝 Text added.
media-result-missing-glyphs = ⚠️ The font has no such characters, so they were left out: { $characters }
media-result-generate = 🎨 Image created.
media-result-noop = Unchanged.
# A hosted model's result (jobs of workers.ai).
media-result-ai-generate = 🎨 Image created: { $width }×{ $height }.
media-result-ai-edit = ✏️ Edited: { $width }×{ $height }.
media-result-ai-merge = 🔗 Photos combined into one scene: { $width }×{ $height }.
media-result-ai-face_swap = 🔄 Face swapped: { $width }×{ $height }.
media-result-ai-retouch = ✨ Portrait restored and retouched: { $width }×{ $height }.
media-result-ai-upscale = ⬆️ Upscaled: { $width }×{ $height }.

## What it cost and what is left
worker-cost-balance = Charged { $price } ₽. Balance: { $balance } ₽.
worker-cost-free = Used a free operation. Free operations left: { $free_left }. Balance: { $balance } ₽.
worker-cost-none = Free of charge. Balance: { $balance } ₽.
worker-cost-subscription = { $units } taken from the subscription, { $units_left } left. Balance: { $balance } ₽.
worker-cost-package = { $units } taken from the package, { $units_left } left. Balance: { $balance } ₽.
worker-document-caption = Uncompressed file.
# The button under a result whose photo Telegram compresses: the bot sends the file on a tap.
worker-btn-file = 📎 Uncompressed file

## Failures
worker-failed = ❌ That didn't work: { $reason }
worker-reason-no-face = no face found in { $which ->
    [a] the first photo
    [b] the second photo
    [both] either photo
   *[other] the photo
}. Send a photo where the face is clearly visible.
worker-reason-invalid-image = could not read { $which ->
    [a] the first photo
    [b] the second photo
   *[other] the photo
}: the file is damaged or not an image.
worker-reason-image-too-large = the image is too large.
worker-reason-image-too-small = { $which ->
    [a] the first photo
    [b] the second photo
   *[other] the photo
} is too small ({ $width }×{ $height }): at least { $min } pixels on the shorter side are needed.
worker-reason-instruction = I did not understand what to do with the photo.
worker-reason-invalid-text = the text is empty or too long.
worker-reason-no-change = these edits change no pixel of this photo (black and white of a photo that already is, for example).
worker-reason-backend = the image generation service could not handle the request.
worker-reason-model-refused = the service refused: the request or photo did not pass its safety check.
worker-reason-model-input = the service did not accept this input (the photo or the text).
worker-reason-media = the image could not be processed.
worker-reason-timeout = processing took too long.
worker-reason-crashed = the processor stopped unexpectedly.
worker-reason-deadline = the task did not finish in time.
worker-reason-telegram = Telegram did not accept the request.
worker-reason-undeliverable = the result could not be sent.
worker-reason-input-missing = could not get the photo from Telegram.
worker-reason-input-too-large = the file is larger than { $limit_mb } MB.
worker-reason-unavailable = a service is temporarily unavailable.
worker-reason-internal = internal error.

## Refunds
worker-refunded-balance = { $amount } ₽ returned to your balance. Balance: { $balance } ₽.
worker-refunded-free = Your free operation is back. Free operations left: { $free_left }.
worker-refunded-none = Nothing was charged.
worker-refunded-subscription = The operation is back in your subscription. Left in your subscription: { $units_left }.
worker-refunded-package = The operation is back in your package. Left in your package: { $units_left }.
worker-refunded-period-over = It was taken from your subscription in the previous period and is not carried over into the new period.
worker-refunded-plan-ended = It was taken from a package that has ended: there is nothing to return it to.

## ✏️ The edit instruction language (imaging/edit.py). The words it accepts are its
## grammar and stay in code; what users read is here: the step labels of the result
## caption and the list of commands the bot shows when it did not understand.
# A step's name; with a value, in the form of its kind (value arrives formatted: "+20", "90").
edit-step-grayscale = grayscale
edit-step-sepia = sepia
edit-step-blur = blur
edit-step-sharpen = sharpen
edit-step-brightness = brightness
edit-step-contrast = contrast
edit-step-saturation = saturation
edit-step-rotate = rotate
edit-step-flip_h = mirror
edit-step-flip_v = vertical flip
edit-step-crop_square = square crop
edit-step-invert = invert
edit-step-with-percent = { $name } { $value }%
edit-step-with-angle = { $name } { $value }°
edit-step-with-value = { $name } { $value }
# One help line per command; ranges arrive formatted ($percent_min is "−100").
edit-help-grayscale = grayscale (b&w, black and white)
edit-help-sepia = sepia
edit-help-blur = blur [N] (N { $blur_min }…{ $blur_max }, default { $blur_default })
edit-help-sharpen = sharpen
edit-help-brightness = brightness ±N ({ $percent_min }…{ $percent_max }), brighter, darker
edit-help-contrast = contrast ±N ({ $percent_min }…{ $percent_max })
edit-help-saturation = saturation ±N ({ $percent_min }…{ $percent_max })
edit-help-rotate = rotate 90 / 180 / 270 (clockwise), rotate left / right
edit-help-flip_h = mirror (flip horizontally)
edit-help-flip_v = flip vertical
edit-help-crop_square = crop square
edit-help-invert = invert (negative)
