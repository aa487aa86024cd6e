"""Unit tests of bootstrap.py's argparse schema and JSON helpers (no Django needed).

    python3 test/python/test_bootstrap_schema.py        # any Python 3.8-3.13
"""
import argparse
import importlib.util
import json
import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
BOOTSTRAP = os.path.join(HERE, '..', '..', 'src', 'runner', 'python', 'bootstrap.py')

spec = importlib.util.spec_from_file_location('dc_bootstrap', BOOTSTRAP)
bootstrap = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bootstrap)


class Odd(argparse.Action):
    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, values)


class Exploding(argparse.Action):
    """An action whose attributes blow up when read."""

    @property
    def choices(self):
        raise RuntimeError('boom')

    @choices.setter
    def choices(self, value):
        pass

    def __call__(self, parser, namespace, values, option_string=None):
        pass


class OnlyContains:
    def __contains__(self, item):
        return True


def by_dest(schema):
    return {arg['dest']: arg for arg in schema['arguments']}


class SchemaTest(unittest.TestCase):
    def schema(self, parser):
        schema = bootstrap.parser_schema(parser)
        json.dumps(schema, allow_nan=False)  # always valid JSON
        return schema

    def test_kinds_types_and_values(self):
        p = argparse.ArgumentParser(prog='manage.py x', description='desc', epilog='epi')
        p.add_argument('name')
        p.add_argument('rest', nargs=argparse.REMAINDER)
        p.add_argument('--n', type=int, default=3, help='n (default %(default)s)')
        p.add_argument('--f', type=float, default=float('nan'))
        p.add_argument('--flag', action='store_true')
        p.add_argument('--no-thing', dest='thing', action='store_false')
        p.add_argument('--c', action='store_const', const={'a': 1})
        p.add_argument('--tag', action='append', choices=['a', 'b'])
        p.add_argument('--ac', action='append_const', const=5)
        p.add_argument('-v', action='count', default=0)
        p.add_argument('--ext', action='extend', nargs='+', type=str)
        p.add_argument('--out', type=argparse.FileType('w'))
        p.add_argument('--custom', type=lambda s: s.upper(), action=Odd, metavar=('A', 'B'), nargs=2)
        p.add_argument('--hidden', help=argparse.SUPPRESS, default=argparse.SUPPRESS)
        p.add_argument('--big', type=int, choices=range(5000))
        p.add_argument('--weird', choices=OnlyContains(), metavar='W')
        p.add_argument('--path', default=object())
        p.add_argument('--set', default=frozenset(['b', 'a']))
        p.add_argument('--x', action=Exploding, metavar='X')
        group = p.add_mutually_exclusive_group(required=True)
        group.add_argument('--one', action='store_true')
        group.add_argument('--two', action='store_true')
        if hasattr(argparse, 'BooleanOptionalAction'):
            p.add_argument('--color', action=argparse.BooleanOptionalAction, default=True)
        s = self.schema(p)
        self.assertEqual((s['prog'], s['description'], s['epilog']), ('manage.py x', 'desc', 'epi'))
        a = by_dest(s)
        self.assertEqual(a['help']['kind'], 'help')
        self.assertTrue(a['help']['suppressed'])
        self.assertEqual(a['name']['option_strings'], [])
        self.assertTrue(a['name']['required'])
        self.assertEqual(a['rest']['nargs'], '...')
        self.assertFalse(a['rest']['required'])
        self.assertEqual((a['n']['type'], a['n']['default'], a['n']['help']), ('int', 3, 'n (default 3)'))
        self.assertEqual(a['f']['default'], {'repr': 'nan', 'type': 'float'})
        self.assertEqual((a['flag']['kind'], a['flag']['default'], a['flag']['const']), ('store_true', False, True))
        self.assertEqual(a['thing']['kind'], 'store_false')
        self.assertEqual((a['c']['kind'], a['c']['const']), ('store_const', {'a': 1}))
        self.assertEqual((a['tag']['kind'], a['tag']['choices']), ('append', ['a', 'b']))
        self.assertEqual(a['ac']['kind'], 'append_const')
        self.assertEqual(a['v']['kind'], 'count')
        self.assertEqual((a['ext']['kind'], a['ext']['nargs']), ('extend', '+'))
        self.assertEqual(a['out']['type'], 'file')
        self.assertEqual((a['custom']['kind'], a['custom']['type'], a['custom']['metavar'], a['custom']['nargs']),
                         ('other', 'other:<lambda>', ['A', 'B'], 2))
        self.assertTrue(a['hidden']['hidden'] and a['hidden']['suppressed'])
        self.assertIsNone(a['hidden']['help'])
        self.assertIsNone(a['big']['choices'])
        self.assertTrue(a['big']['choices_truncated'])
        self.assertIsNone(a['weird']['choices'])
        self.assertEqual(a['path']['default']['type'], 'object')
        self.assertEqual(a['set']['default'], ['a', 'b'])
        self.assertEqual(a['x']['kind'], 'other')
        self.assertIn('boom', a['x']['error'])
        self.assertEqual(s['groups'], [{'required': True, 'dests': ['one', 'two']}])
        if hasattr(argparse, 'BooleanOptionalAction'):
            self.assertEqual(a['color']['kind'], 'boolean_optional')
        self.assertTrue(a['help']['common'])
        self.assertFalse(a['n']['common'])

    def test_subcommands_recursive_with_aliases(self):
        p = argparse.ArgumentParser(prog='manage.py s')
        sub = p.add_subparsers(dest='action', required=True)
        add = sub.add_parser('add', help='add it', aliases=['plus'])
        add.add_argument('name')
        deep = sub.add_parser('deep').add_subparsers(dest='inner')
        deep.add_parser('leaf').add_argument('--help-me', action='store_true')
        s = self.schema(p)
        self.assertNotIn('action', by_dest(s))
        subs = s['subcommands']
        self.assertEqual((subs['dest'], subs['required']), ('action', True))
        self.assertEqual(set(subs['choices']), {'add', 'plus', 'deep'})
        self.assertEqual(subs['aliases'], {'plus': 'add'})
        self.assertEqual(subs['choices_help'], {'add': 'add it'})
        self.assertEqual(by_dest(subs['choices']['add'])['name']['required'], True)
        self.assertFalse(by_dest(subs['choices']['add'])['help']['common'])
        leaf = subs['choices']['deep']['subcommands']['choices']['leaf']
        self.assertIn('help_me', by_dest(leaf))

    def test_json_safe(self):
        js = bootstrap.json_safe
        self.assertEqual(js(('a', 1, 2.5, None, True)), ['a', 1, 2.5, None, True])
        self.assertEqual(js({3, 1, 2}), [1, 2, 3])
        self.assertEqual(js({1, 'a'}), ['a', 1])  # mixed: ordered by repr ("'a'" < "1")
        self.assertEqual(js({1: 'x', None: 'y', 'k': [float('inf')]}),
                         {'1': 'x', 'null': 'y', 'k': [{'repr': 'inf', 'type': 'float'}]})
        loop = []
        loop.append(loop)
        json.dumps(js(loop))

    def test_settings_module_regex(self):
        match = bootstrap._SETDEFAULT_RE.search("os.environ.setdefault(\n  \"DJANGO_SETTINGS_MODULE\", 'a.b.c'\n)")
        self.assertEqual(match.group(3), 'a.b.c')
        self.assertEqual(bootstrap._ASSIGN_RE.search("os.environ['DJANGO_SETTINGS_MODULE'] = \"x.y\"").group(3), 'x.y')


if __name__ == '__main__':
    unittest.main()
