"""Running SCALE-Sim 3.0.0 live on one small topology (shared by the tests and the benchmark).

SCALE-Sim needs a config file, a topology and a layout file even when layouts are off; CALC mode
never stalls, so the compute cycles it reports are its pure array model.
"""

from __future__ import annotations

from pathlib import Path

CONFIG = """[general]
run_name = live

[architecture_presets]
ArrayHeight: {rows}
ArrayWidth: {cols}
IfmapSramSzkB: {ifmap_kb}
FilterSramSzkB: {filter_kb}
OfmapSramSzkB: {ofmap_kb}
IfmapOffset: 0
FilterOffset: 10000000
OfmapOffset: 20000000
Bandwidth: 10
Dataflow: {dataflow}
ReadRequestBuffer: 32
WriteRequestBuffer: 32

[layout]
IfmapCustomLayout: False
IfmapSRAMBankBandwidth: 10
IfmapSRAMBankNum: 10
IfmapSRAMBankPort: 2
FilterCustomLayout: False
FilterSRAMBankBandwidth: 10
FilterSRAMBankNum: 10
FilterSRAMBankPort: 2

[sparsity]
SparsitySupport: false
SparseRep: ellpack_block
OptimizedMapping: false
BlockSize: 8
RandomNumberGeneratorSeed: 40

[run_presets]
InterfaceBandwidth: CALC
UseRamulatorTrace: False
"""


def run_scalesim(
    tmp: Path, rows: int, cols: int, dataflow: str, topology: str, gemm: bool,
    sram_kb: tuple[int, int, int] = (64, 64, 64),
) -> list[int]:
    """Run SCALE-Sim (CALC mode) on a topology text in folder ``tmp``; its compute cycles per layer."""
    from scalesim import scale_sim

    ifmap_kb, filter_kb, ofmap_kb = sram_kb
    (tmp / "scale.cfg").write_text(
        CONFIG.format(rows=rows, cols=cols, dataflow=dataflow, ifmap_kb=ifmap_kb, filter_kb=filter_kb, ofmap_kb=ofmap_kb),
        encoding="utf-8",
    )
    (tmp / "topology.csv").write_text(topology, encoding="utf-8")
    (tmp / "layout.csv").write_text("Layer name,\n", encoding="utf-8")  # required even when unused
    sim = scale_sim.scalesim(
        save_disk_space=True, verbose=False, config=str(tmp / "scale.cfg"),
        topology=str(tmp / "topology.csv"), layout=str(tmp / "layout.csv"), input_type_gemm=gemm,
    )
    sim.run_scale(top_path=str(tmp))
    return [int(layer.get_compute_report_items()[1]) for layer in sim.runner.single_layer_sim_object_list]
