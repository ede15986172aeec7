"""The demo's contract: a table and a final RMSE of 1e-6 or better."""

import io

from rich.console import Console

from kanopy import demo


def test_demo_reaches_high_accuracy():
    out = io.StringIO()
    result = demo.run(console=Console(file=out, width=120), progress=False)
    text = out.getvalue()
    assert "final test RMSE:" in text.splitlines()[-1]
    assert [s.grid for s in result.stages] == [3, 5, 10, 20, 50, 100]
    assert result.final_test_rmse <= 1e-6
    assert result.stages[-1].width == [2, 1, 1]
    # its last step discovers the closed form of the toy function
    import sympy

    x, y = sorted(result.formula.expr.free_symbols, key=str)  # the formula's own symbols
    assert "discovered formula:" in text.splitlines()[-2]
    assert sympy.simplify(result.formula.expr - sympy.exp(sympy.sin(sympy.pi * x) + y**2)) == 0
