# The model catalogue (billing.ai_models): what a mode uses and costs, for users; and the
# admin's /models, /model_set, /model_enable, /model_disable. ru/models.ftl has the same keys.

## What a mode uses (its prompt, /help, the menu)
models-uses-fal = 🤖 Model: <code>{ $model }</code>
models-uses-local = ⚙️ Built-in processing
models-uses-fallback = ⚙️ The AI model is not connected now — built-in processing stands in (simpler, no AI)
models-cost-paid = { $price } ₽ ({ $ops })
models-cost-free = free
models-help-line =
    { $line }
       <i>{ $uses } · { $cost }</i>
models-menu-fallback = ⚙️ Without their AI model, on built-in processing: { $modes }.
models-menu-unavailable = 🚫 Not available now: { $modes }.
models-why-no_key = { $mode } (model not connected)
models-why-disabled = { $mode } (turned off)
models-mode-no_key = This mode is not available now: its model is not connected. Pick another 👇
models-mode-disabled = This mode is turned off now. Pick another 👇

## The editor when a model runs it: free words instead of commands
bot-help-edit-fal = ✏️ <b>Edit</b> — a photo + what to change, in your own words: "make the sky a sunset", "remove the people in the background".
bot-mode-edit-fal =
    ✏️ Send a photo with a caption saying what to change, in your own words: e.g. "make the sky a sunset".
    Or one after the other: the photo first, then the text.
bot-edit-need-words = ✍️ Got the photo! Now tell me in your own words what to change — e.g. "make the sky a sunset".

## Admin: the model catalogue
admin-models =
    🤖 Models (mode · what runs it · price · state):

    { $models }

    Change: <code>/model_set TYPE field=value ...</code> (backend=fal|local, model=fal-ai/..., params='{ "{" }...{ "}" }', units=N|default, enabled=yes|no); <code>/model_enable TYPE</code>, <code>/model_disable TYPE</code>.
admin-model-line = <b>{ $type }</b> · { $backend } { $model } · { $units } · { $state }{ $params }
admin-model-units = { $units } units
admin-model-units-default = { $units } units (default)
admin-model-state-on = enabled
admin-model-state-off = disabled
admin-model-now-fal = now: the model
admin-model-now-local = now: built-in processing
admin-model-now-fallback = now: built-in processing (no FAL_KEY)
admin-model-now-no_key = now: not available (no FAL_KEY)
admin-model-now-disabled = now: not offered
admin-model-params = { "" } · params <code>{ $params }</code>
admin-model-set-usage = Usage: <code>/model_set TYPE field=value ...</code>, e.g. <code>/model_set upscale units=2</code>. The list: /models
admin-model-toggle-usage = Usage: <code>{ $command } TYPE</code>. The list: /models
admin-model-saved = ✅ Saved: { $model }
admin-model-error-unknown_type = There is no mode “{ $value }”. Modes: { $choices }. Nothing changed.
admin-model-error-bad_pair = “{ $value }” is not field=value. Nothing changed.
admin-model-error-unknown_field = There is no field “{ $field }”. Fields: { $fields }. Nothing changed.
admin-model-error-repeated = { $field } is given twice. Nothing changed.
admin-model-error-missing = Nothing to change: give field=value. Nothing changed.
admin-model-error-bad_backend = backend is one of { $choices }, not “{ $value }”. Nothing changed.
admin-model-error-no_local = { $type } has no built-in processing: fal only. Nothing changed.
admin-model-error-no_fal = { $type } runs on built-in processing only. Nothing changed.
admin-model-error-model_needed = Backend fal needs a model (model=owner/name). Nothing changed.
admin-model-error-bad_model = “{ $value }” is not a fal model id like fal-ai/flux/schnell. Nothing changed.
admin-model-error-bad_units = The price in units is a whole number from 0 to { $high }, or default — not “{ $value }”. Nothing changed.
admin-model-error-bad_params = Params are a JSON object of at most { $high } characters ({ $value }). Nothing changed.
admin-model-error-input_param = “{ $value }” is set by the operation from what the user sent. Nothing changed.
admin-model-error-secret_param = “{ $value }” looks like a key: provider keys are settings (FAL_KEY), never the catalogue. Nothing changed.
admin-model-error-bad_bool = { $field }: yes or no, not “{ $value }”. Nothing changed.

## Merge when a multi-image model runs it: 2–4 photos and a sentence on how to combine them
bot-help-merge-fal = 🔗 <b>Merge</b> — 2 to 4 photos in one scene, as you describe it: "the two of us on a beach at sunset".
bot-mode-merge-fal =
    🔗 Send 2 to 4 photos — as an album or one by one — and one sentence on how to combine them: e.g. "the two of us on a beach at sunset".
    The sentence can be a photo's caption or a message of its own after the photos.
bot-merge-need-words = ✍️ Got the photos! Now one sentence: how to combine them — e.g. "the two of us on a beach at sunset".
