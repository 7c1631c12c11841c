def convert_original(*a, **k): raise NotImplementedError
