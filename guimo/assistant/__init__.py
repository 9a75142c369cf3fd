"""The smart-home voice assistant (issue #24): speech -> text -> intents and slots -> device actions.

Runtime code only (serving imports it): ``types`` (the shared vocabulary of intents, slots, parses
and actions), ``home`` and ``state`` (the home description and its persisted device states),
``actions`` (validate and apply a parsed command), ``normalize`` (slot values), ``patterns`` (the
command patterns behind both the training-data generator and the ASR grammar), ``audio``, ``asr``,
``grammar`` and ``speech`` (WAV in, text out, WAV reply), and ``core`` (one turn end to end).
"""
