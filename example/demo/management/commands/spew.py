from django.core.management.base import BaseCommand, CommandError

# Roughly how much text goes into one write: few enough writes to print a gigabyte
# in about a second, small enough that output still streams while it is produced.
BATCH_BYTES = 1 << 20
# Wide enough for any line number we could ever reach, so every line is exactly
# --width characters and --bytes is exact.
MIN_WIDTH = 16
PLACEHOLDER = '\0'


class Command(BaseCommand):
    help = (
        'Print a lot of numbered output, fast. Line n is the number n zero-padded to at least 6 '
        'digits, a space, then "x" up to --width characters, then a newline '
        '(e.g. "000001 xxxx..."), so output can be checked byte for byte. '
        'With --bytes the output is exactly N bytes: as many whole lines as fit, then '
        'one last line cut short to fill the rest (still ending in a newline).'
    )

    def add_arguments(self, parser):
        amount = parser.add_mutually_exclusive_group()
        amount.add_argument(
            '--lines', type=int, default=None, metavar='N',
            help='number of lines to print (default 1000)',
        )
        amount.add_argument(
            '--bytes', type=int, default=None, metavar='N',
            help='print exactly N bytes in total instead of a number of lines',
        )
        parser.add_argument(
            '--width', type=int, default=80, metavar='W',
            help=f'characters per line, not counting the newline (default 80, minimum {MIN_WIDTH})',
        )
        parser.add_argument(
            '--stderr-every', type=int, default=0, metavar='K',
            help='also write every K-th line to stderr (default: never)',
        )

    def handle(self, *args, **options):
        width = options['width']
        every = options['stderr_every']
        if width < MIN_WIDTH:
            raise CommandError(f'--width must be at least {MIN_WIDTH}')
        if every < 0:
            raise CommandError('--stderr-every must not be negative')

        line_bytes = width + 1
        if options['bytes'] is not None:
            if options['bytes'] < 0:
                raise CommandError('--bytes must not be negative')
            lines, rest = divmod(options['bytes'], line_bytes)
        else:
            lines = 1000 if options['lines'] is None else options['lines']
            if lines < 0:
                raise CommandError('--lines must not be negative')
            rest = 0

        # Output is produced in blocks of 10**k lines that share all but their last k
        # digits. A block is rendered once as a template with a placeholder where the
        # shared digits go, so each block costs one str.replace instead of 10**k
        # formatting calls. Blocks never cross a power of ten (k <= 6), so all lines in
        # a block have the same width.
        k = 0
        while k < 6 and 10 ** (k + 1) * line_bytes <= BATCH_BYTES:
            k += 1
        block = 10 ** k
        templates = {}

        def render(h, digits):
            template = templates.get(digits)
            if template is None:
                tail = ' ' + 'x' * (width - digits - 1) + '\n'
                template = ''.join(
                    PLACEHOLDER + (str(j).zfill(k) if k else '') + tail for j in range(block)
                )
                templates[digits] = template
            high = str(h).zfill(digits - k) if digits > k else ''
            return template.replace(PLACEHOLDER, high)

        for h in range(1 // block, lines // block + 1):
            first = max(1, h * block)
            stop = min(lines + 1, (h + 1) * block)
            if first >= stop:
                continue
            digits = max(6, len(str(stop - 1)))
            text = render(h, digits)[(first - h * block) * line_bytes:(stop - h * block) * line_bytes]
            self.stdout.write(text, ending='')
            self.stdout.flush()
            if every:
                errs = ''.join(
                    text[(n - first) * line_bytes:(n - first + 1) * line_bytes]
                    for n in range(first + (-first) % every, stop, every)
                )
                if errs:
                    self.stderr.write(errs, ending='')
                    self.stderr.flush()

        if rest:
            n = lines + 1
            digits = max(6, len(str(n)))
            last = (str(n).zfill(digits) + ' ' + 'x' * (width - digits - 1))[:rest - 1] + '\n'
            self.stdout.write(last, ending='')
            self.stdout.flush()
            if every and n % every == 0:
                self.stderr.write(last, ending='')
                self.stderr.flush()
