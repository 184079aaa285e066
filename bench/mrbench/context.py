"""One run of some sections: what they share (scratch directory, raw sources, encoder
settings, repetitions, the machine) and what each section notes down for its JSON file
(the commands it ran, the encoder settings it used)."""

import os
import time

from . import machine
from .encoders import Settings
from .media import Media
from .process import show

FORMAT = 1  # of the JSON files; raise it when their layout changes


class BenchRun:
    def __init__(self, work, reps):
        self.work = work
        self.media = Media(work)
        self.settings = Settings(self.media)
        self.reps = reps
        self.id, self.date = machine.now()
        self.machine = machine.describe()
        self.load_start = machine.load_average()
        self.started = time.monotonic()
        self.commands = {}

    def path(self, name):
        return os.path.join(self.work, name)

    def command(self, name, cmd):
        """Notes the first command of each kind, with the scratch directory as $WORK."""
        self.commands.setdefault(name, show(cmd, self.work))

    def begin_section(self):
        self.commands = {}
        self.settings.forget_used()

    def record(self, key, figures):
        """The JSON document of section `key`: where, when and how its figures were
        measured, and the figures."""
        return {
            "format": FORMAT,
            "section": key,
            "run": self.id,
            "date": self.date,
            "machine": self.machine,
            "load": {"start": self.load_start, "end": machine.load_average()},
            # since the run started, when this section was done
            "elapsed_s": round(time.monotonic() - self.started, 1),
            # another build during the run shows as a plugin that differs from the machine's
            "plugin_at_end": machine.plugin_id(),
            "commands": [{"name": n, "command": c} for n, c in self.commands.items()],
            "encoder_settings": self.settings.used_records(),
            "figures": figures,
        }
