import signal
import sys
import time

from django.core.management.base import BaseCommand

BAR_WIDTH = 20
EXIT_CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}


class Interrupted(Exception):
    def __init__(self, signum):
        super().__init__(signum)
        self.signum = signum


def _raise_interrupted(signum, frame):
    raise Interrupted(signum)


class Command(BaseCommand):
    help = (
        'Work slowly, showing a progress bar redrawn with carriage returns, then print "done". '
        'On SIGINT or SIGTERM write "interrupted at step K of N" to stderr (K is the step in '
        'progress, from 1) and exit with 130 or 143.'
    )

    def add_arguments(self, parser):
        parser.add_argument('--steps', type=int, default=10, help='number of steps (default 10)')
        parser.add_argument('--delay', type=float, default=0.5, help='seconds per step (default 0.5)')

    def handle(self, *args, **options):
        steps = max(0, options['steps'])
        delay = max(0.0, options['delay'])
        previous = {}
        try:
            for signum in EXIT_CODES:
                previous[signum] = signal.signal(signum, _raise_interrupted)
        except ValueError:
            pass  # not in the main thread (e.g. call_command from a thread): no handlers
        step = 0
        try:
            self._draw(0, steps)
            for step in range(1, steps + 1):
                time.sleep(delay)
                self._draw(step, steps)
            self.stdout.write('\ndone')
            self.stdout.flush()
        except Interrupted as exc:
            self.stdout.write('\n', ending='')
            self.stdout.flush()
            self.stderr.write(f'interrupted at step {step} of {steps}')
            self.stderr.flush()
            sys.exit(EXIT_CODES[exc.signum])
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def _draw(self, step, steps):
        fraction = step / steps if steps else 1.0
        filled = int(BAR_WIDTH * fraction)
        bar = '#' * filled + ' ' * (BAR_WIDTH - filled)
        self.stdout.write(f'\r[{bar}] {int(fraction * 100):3d}%', ending='')
        self.stdout.flush()
