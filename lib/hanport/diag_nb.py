"""Norwegian (bokmal) words for the meter state in diag; see hanport.diag._msg.

A module of its own so that its strings load only when "language" is "nb".
"""


def meter_msg(n, s):
    if n == 0:
        return ("ingen data fra måleren på %d s - HAN-porten er kanskje ikke åpnet ennå: "
                "be nettselskapet åpne den" % s)
    if n == 1:
        return ("ingen data fra måleren på %d s - sjekk kabelen; noen målere slutter å "
                "sende til nettselskapet tilbakestiller dem" % s)
    if n == 2:
        return ("data fra måleren, men ingen gyldig ramme på %d s - sjekk pariteten "
                "(Aidon 8E1, Kaifa og Kamstrup 8N1) og M-Bus-adapteren" % s)
    return ("måleren krypterer dataene: be nettselskapet om nøklene; "
            "denne donglen kan ikke dekryptere ennå")
