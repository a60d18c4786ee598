"""IF/THEN rules (SPEC §3) and unsubscribes (SPEC §8): the model, its JSON and the CLI's words,
filter evaluation, scope, actions, the action log and Undo."""
