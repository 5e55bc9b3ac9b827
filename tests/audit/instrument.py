"""Rewrite the assertions of a source file so that :mod:`audit_recorder` sees their numbers.

Every comparison inside an ``assert`` test becomes ``__audit__.cmp(site, left, op, right)``
(same value, same single evaluation of each side; a chained comparison ``a < b < c`` becomes
``cmp(a, '<', b) and cmp(b, '<', c)``), and every call of a function named ``assert_allclose``
or ``assert_close`` becomes ``__audit__.allclose(site, fn, *args, **kw)``. Nothing else
changes. A *site* is ``"<label>:<line>"`` with the assertion's source text and kind.
"""
from __future__ import annotations

import ast

_OPNAME = {ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=", ast.Eq: "==",
           ast.NotEq: "!=", ast.Is: "is", ast.IsNot: "is not", ast.In: "in", ast.NotIn: "not in"}
CLOSE = ("assert_allclose", "assert_close")


class _Rewriter(ast.NodeTransformer):
    def __init__(self, label: str, source: str, line_offset: int = 0):
        self.label, self.lines, self.off = label, source.splitlines(), line_offset
        self.current = None

    def _site(self, node, kind):
        text = " ".join(ln.strip() for ln in self.lines[node.lineno - 1:(node.end_lineno or node.lineno)])
        site = f"{self.label}:{node.lineno + self.off}"
        return ast.Tuple([ast.Constant(site), ast.Constant(text[:300]), ast.Constant(kind)], ast.Load())

    # Comparisons whose truth is the assertion's (so their slack is the assertion's): the test
    # itself, operands of `and`, `not`, and the argument of all()/np.all()/bool()/.all().
    # A comparison anywhere else (inside `|`, `~`, np.mean(...), a filter) is recorded as an
    # inner comparison, without a margin.
    _PASS = {"all", "bool"}

    def visit_Assert(self, node):
        self.current = self._site(node, "compare")
        node.test = self._top(node.test)
        self.current = None
        return node

    def _top(self, node):
        if isinstance(node, ast.BoolOp) and isinstance(node.op, ast.And):
            node.values = [self._top(v) for v in node.values]
            return node
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not) and \
                isinstance(node.operand, ast.Compare) and len(node.operand.ops) == 1:
            return self.visit_UnaryOp(node)
        if isinstance(node, ast.Call):
            f = node.func
            name = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else None
            if name in self._PASS:
                if isinstance(f, ast.Attribute) and name == "all" and not node.args:
                    f.value = self._top(f.value)          # (a < b).all()
                    return node
                for i, a in enumerate(node.args):
                    if isinstance(a, (ast.GeneratorExp, ast.ListComp)):
                        a.generators = [self._inner(g) for g in a.generators]
                        a.elt = self._top(a.elt)            # all(a < b for ...)
                    else:
                        node.args[i] = self._top(a)
                return node
        if isinstance(node, ast.Compare):
            return self.visit_Compare(node)
        saved, self.current = self.current, None           # inner comparisons: no margin
        out = self.visit(node)
        self.current = saved
        site = ast.Tuple([saved.elts[0], saved.elts[1], ast.Constant("compound")], ast.Load())
        return ast.Call(ast.Attribute(ast.Name("__audit__", ast.Load()), "mark", ast.Load()),
                        [site, out], [])

    def _inner(self, node):
        """Visit a subtree with no margin recording (comparisons inside it stay plain)."""
        saved, self.current = self.current, None
        out = self.visit(node)
        self.current = saved
        return out

    def visit_UnaryOp(self, node):
        if (self.current is not None and isinstance(node.op, ast.Not)
                and isinstance(node.operand, ast.Compare) and len(node.operand.ops) == 1):
            c = node.operand
            return ast.UnaryOp(ast.Not(), self._cmp(self._inner(c.left), c.ops[0],
                                                    self._inner(c.comparators[0]), negated=True))
        self.generic_visit(node)
        return node

    def _cmp(self, left, op, right, negated=False):
        return ast.Call(ast.Attribute(ast.Name("__audit__", ast.Load()), "cmp", ast.Load()),
                        [self.current, left, ast.Constant(_OPNAME[type(op)]), right],
                        [ast.keyword("negated", ast.Constant(True))] if negated else [])

    def visit_Compare(self, node):
        if self.current is None:
            self.generic_visit(node)
            return node
        node.left = self._inner(node.left)
        node.comparators = [self._inner(c) for c in node.comparators]
        parts, left = [], node.left
        for op, right in zip(node.ops, node.comparators):
            parts.append(self._cmp(left, op, right))
            left = right
        return parts[0] if len(parts) == 1 else ast.BoolOp(ast.And(), parts)

    def visit_Call(self, node):
        self.generic_visit(node)
        f = node.func
        name = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else None
        if name in CLOSE:
            site = self._site(node, "allclose")
            return ast.Call(ast.Attribute(ast.Name("__audit__", ast.Load()), "allclose", ast.Load()),
                            [site, f, *node.args], node.keywords)
        return node


def instrument(source: str, label: str, line_offset: int = 0) -> ast.Module:
    """The instrumented module (compile it with ``compile(tree, filename, 'exec')``)."""
    tree = ast.parse(source)
    tree = _Rewriter(label, source, line_offset).visit(tree)
    at = 0                       # after the docstring and any `from __future__` import
    for i, node in enumerate(tree.body):
        if (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and i == 0) or \
                (isinstance(node, ast.ImportFrom) and node.module == "__future__"):
            at = i + 1
    tree.body.insert(at, ast.parse("import audit_recorder as __audit__").body[0])
    return ast.fix_missing_locations(tree)


def instrument_source(source: str, label: str, line_offset: int = 0) -> str:
    return ast.unparse(instrument(source, label, line_offset))
