"""The benchmarks' record of the machine names the CPU generation, not only its brand."""

from benchmarks.common import cpu_model

ZEN1_AND_ZEN5 = """processor\t: 0
vendor_id\t: AuthenticAMD
cpu family\t: {family}
model\t\t: {model}
model name\t: AMD EPYC

processor\t: 1
cpu family\t: 99
model\t\t: 99
model name\t: another block
"""


def test_two_hosts_with_the_same_name_are_told_apart_by_family_and_model() -> None:
    zen1 = cpu_model(ZEN1_AND_ZEN5.format(family=23, model=1))
    zen5 = cpu_model(ZEN1_AND_ZEN5.format(family=26, model=2))
    assert zen1 == "AMD EPYC (family 23, model 1)"
    assert zen5 == "AMD EPYC (family 26, model 2)"


def test_a_cpuinfo_without_family_keeps_the_name() -> None:
    assert cpu_model("processor : 0\nmodel name : Neoverse-N1\n") == "Neoverse-N1"
