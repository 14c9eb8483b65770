"""A safe evaluator for AnalysisTemplate ``successCondition`` / ``failureCondition`` (the analysis's
condition language; not the Rollout's status conditions, which are :mod:`rollouts.model.conditions`).

Argo Rollouts evaluates these strings with the Go ``expr-lang/expr`` language. We
implement the subset that analysis conditions use, with expr's semantics, as a small
tokenizer (:mod:`~analysis.expr.lexer`), a precedence-climbing parser producing an AST of
frozen dataclasses (:mod:`~analysis.expr.parser`, :mod:`~analysis.expr.nodes`), and an
interpreter over that AST (:mod:`~analysis.expr.interpreter`, :mod:`~analysis.expr.values`,
:mod:`~analysis.expr.functions`). Nothing here calls ``eval``/``exec``/``getattr``: values are
only ever ``None``, ``bool``, ``int``, ``float``, ``str``, lists/tuples and mappings, and
member access only reads mapping keys, so a condition can never reach a Python attribute.

Public API (:mod:`analysis.expr.condition`): :func:`compile_condition`, :class:`Condition`,
:func:`evaluate_condition`, :func:`evaluate_expression`, :func:`check_syntax`; errors
(:mod:`analysis.expr.errors`): :class:`ConditionSyntaxError`, :class:`ConditionEvalError`.
"""
