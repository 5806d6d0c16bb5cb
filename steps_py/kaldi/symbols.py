"""OpenFst symbol tables (words.txt, phones.txt): ``symbol integer-id`` per line."""
from steps_py.common import InputError, open_input


def read_symbol_table(path, by_id=False):
    """Reads an OpenFst symbol table (``symbol id`` lines) into ``{symbol: id}`` (``{id: symbol}`` with ``by_id``);
    raises InputError naming the file and line for a malformed line, a repeated symbol or a repeated id."""
    table, ids = {}, {}
    with open_input(path) as f:
        for n, line in enumerate(f, 1):
            fields = line.split()
            if len(fields) != 2 or not fields[1].isdigit():
                raise InputError(f"{path}:{n}: expected 'symbol integer-id', got {line.rstrip()!r}")
            sym, i = fields[0], int(fields[1])
            if sym in table:
                raise InputError(f"{path}:{n}: symbol {sym!r} appears twice")
            if i in ids:
                raise InputError(f"{path}:{n}: id {i} already used by {ids[i]!r}")
            table[sym] = i
            ids[i] = sym
    return ids if by_id else table
