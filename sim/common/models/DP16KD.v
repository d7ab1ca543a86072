// Behavioural simulation model of the subset of Lattice ECP5's DP16KD that qarith instantiates: an
// 18-kbit block RAM at port widths 1, 2, 4, 9 and 18, each port with its read latch (CE) and, with
// REGMODE "OUTREG", its output register (OCE), and chip-select decoding (CSDECODE). Port A writes (WEA
// with CEA; at 18 bits ADA1/ADA0 are the byte enables of bits 9-17/0-8) in WRITEMODE_A "NORMAL" (port
// A's latch keeps its word during a write); port B only reads (a write on it stops the simulation). A
// port B read of bits that port A writes at the same clock edge is an address collision (TN1264: the
// read data is undefined) and latches X; the check takes the two ports to share one clock, as qarith
// drives them. The contents start as INITVAL_00 .. INITVAL_3F: 1024 rows of 18 bits, 16 rows to a
// parameter, 20 bits to a row; a row holds one 18-bit word or two 9-bit words, and 4-, 2- and 1-bit
// words fill its two 9-bit halves from bit 0 up (each half's ninth bit unused). Written for qarith from
// the primitive's documented behaviour (Lattice TN1264, ECP5 and ECP5-5G Memory Usage Guide) and the
// encoding of Yosys's DP16KD mapping (techlibs/lattice/brams_map_16kd.v). RST (qarith ties it low; the
// model stops if it is high), GSR and the other write modes (the model stops on a write in them) are
// not modelled. Synthesis never reads this file: Yosys and nextpnr use the real primitive.
module DP16KD (
    input DIA17, DIA16, DIA15, DIA14, DIA13, DIA12, DIA11, DIA10, DIA9, DIA8, DIA7, DIA6, DIA5, DIA4, DIA3, DIA2, DIA1, DIA0,
    input ADA13, ADA12, ADA11, ADA10, ADA9, ADA8, ADA7, ADA6, ADA5, ADA4, ADA3, ADA2, ADA1, ADA0,
    input CEA, OCEA, CLKA, WEA, RSTA, CSA2, CSA1, CSA0,
    output DOA17, DOA16, DOA15, DOA14, DOA13, DOA12, DOA11, DOA10, DOA9, DOA8, DOA7, DOA6, DOA5, DOA4, DOA3, DOA2, DOA1, DOA0,
    input DIB17, DIB16, DIB15, DIB14, DIB13, DIB12, DIB11, DIB10, DIB9, DIB8, DIB7, DIB6, DIB5, DIB4, DIB3, DIB2, DIB1, DIB0,
    input ADB13, ADB12, ADB11, ADB10, ADB9, ADB8, ADB7, ADB6, ADB5, ADB4, ADB3, ADB2, ADB1, ADB0,
    input CEB, OCEB, CLKB, WEB, RSTB, CSB2, CSB1, CSB0,
    output DOB17, DOB16, DOB15, DOB14, DOB13, DOB12, DOB11, DOB10, DOB9, DOB8, DOB7, DOB6, DOB5, DOB4, DOB3, DOB2, DOB1, DOB0
);
    parameter DATA_WIDTH_A = 18;
    parameter DATA_WIDTH_B = 18;
    parameter REGMODE_A = "NOREG";
    parameter REGMODE_B = "NOREG";
    parameter RESETMODE = "SYNC";
    parameter ASYNC_RESET_RELEASE = "SYNC";
    parameter CSDECODE_A = "0b000";
    parameter CSDECODE_B = "0b000";
    parameter WRITEMODE_A = "NORMAL";
    parameter WRITEMODE_B = "NORMAL";
    parameter GSR = "DISABLED";
    parameter [319:0] INITVAL_00 = 320'h0;
    parameter [319:0] INITVAL_01 = 320'h0;
    parameter [319:0] INITVAL_02 = 320'h0;
    parameter [319:0] INITVAL_03 = 320'h0;
    parameter [319:0] INITVAL_04 = 320'h0;
    parameter [319:0] INITVAL_05 = 320'h0;
    parameter [319:0] INITVAL_06 = 320'h0;
    parameter [319:0] INITVAL_07 = 320'h0;
    parameter [319:0] INITVAL_08 = 320'h0;
    parameter [319:0] INITVAL_09 = 320'h0;
    parameter [319:0] INITVAL_0A = 320'h0;
    parameter [319:0] INITVAL_0B = 320'h0;
    parameter [319:0] INITVAL_0C = 320'h0;
    parameter [319:0] INITVAL_0D = 320'h0;
    parameter [319:0] INITVAL_0E = 320'h0;
    parameter [319:0] INITVAL_0F = 320'h0;
    parameter [319:0] INITVAL_10 = 320'h0;
    parameter [319:0] INITVAL_11 = 320'h0;
    parameter [319:0] INITVAL_12 = 320'h0;
    parameter [319:0] INITVAL_13 = 320'h0;
    parameter [319:0] INITVAL_14 = 320'h0;
    parameter [319:0] INITVAL_15 = 320'h0;
    parameter [319:0] INITVAL_16 = 320'h0;
    parameter [319:0] INITVAL_17 = 320'h0;
    parameter [319:0] INITVAL_18 = 320'h0;
    parameter [319:0] INITVAL_19 = 320'h0;
    parameter [319:0] INITVAL_1A = 320'h0;
    parameter [319:0] INITVAL_1B = 320'h0;
    parameter [319:0] INITVAL_1C = 320'h0;
    parameter [319:0] INITVAL_1D = 320'h0;
    parameter [319:0] INITVAL_1E = 320'h0;
    parameter [319:0] INITVAL_1F = 320'h0;
    parameter [319:0] INITVAL_20 = 320'h0;
    parameter [319:0] INITVAL_21 = 320'h0;
    parameter [319:0] INITVAL_22 = 320'h0;
    parameter [319:0] INITVAL_23 = 320'h0;
    parameter [319:0] INITVAL_24 = 320'h0;
    parameter [319:0] INITVAL_25 = 320'h0;
    parameter [319:0] INITVAL_26 = 320'h0;
    parameter [319:0] INITVAL_27 = 320'h0;
    parameter [319:0] INITVAL_28 = 320'h0;
    parameter [319:0] INITVAL_29 = 320'h0;
    parameter [319:0] INITVAL_2A = 320'h0;
    parameter [319:0] INITVAL_2B = 320'h0;
    parameter [319:0] INITVAL_2C = 320'h0;
    parameter [319:0] INITVAL_2D = 320'h0;
    parameter [319:0] INITVAL_2E = 320'h0;
    parameter [319:0] INITVAL_2F = 320'h0;
    parameter [319:0] INITVAL_30 = 320'h0;
    parameter [319:0] INITVAL_31 = 320'h0;
    parameter [319:0] INITVAL_32 = 320'h0;
    parameter [319:0] INITVAL_33 = 320'h0;
    parameter [319:0] INITVAL_34 = 320'h0;
    parameter [319:0] INITVAL_35 = 320'h0;
    parameter [319:0] INITVAL_36 = 320'h0;
    parameter [319:0] INITVAL_37 = 320'h0;
    parameter [319:0] INITVAL_38 = 320'h0;
    parameter [319:0] INITVAL_39 = 320'h0;
    parameter [319:0] INITVAL_3A = 320'h0;
    parameter [319:0] INITVAL_3B = 320'h0;
    parameter [319:0] INITVAL_3C = 320'h0;
    parameter [319:0] INITVAL_3D = 320'h0;
    parameter [319:0] INITVAL_3E = 320'h0;
    parameter [319:0] INITVAL_3F = 320'h0;

    localparam [20479:0] INITVALS = {INITVAL_3F, INITVAL_3E, INITVAL_3D, INITVAL_3C, INITVAL_3B, INITVAL_3A, INITVAL_39, INITVAL_38, INITVAL_37, INITVAL_36, INITVAL_35, INITVAL_34, INITVAL_33, INITVAL_32, INITVAL_31, INITVAL_30, INITVAL_2F, INITVAL_2E, INITVAL_2D, INITVAL_2C, INITVAL_2B, INITVAL_2A, INITVAL_29, INITVAL_28, INITVAL_27, INITVAL_26, INITVAL_25, INITVAL_24, INITVAL_23, INITVAL_22, INITVAL_21, INITVAL_20, INITVAL_1F, INITVAL_1E, INITVAL_1D, INITVAL_1C, INITVAL_1B, INITVAL_1A, INITVAL_19, INITVAL_18, INITVAL_17, INITVAL_16, INITVAL_15, INITVAL_14, INITVAL_13, INITVAL_12, INITVAL_11, INITVAL_10, INITVAL_0F, INITVAL_0E, INITVAL_0D, INITVAL_0C, INITVAL_0B, INITVAL_0A, INITVAL_09, INITVAL_08, INITVAL_07, INITVAL_06, INITVAL_05, INITVAL_04, INITVAL_03, INITVAL_02, INITVAL_01, INITVAL_00};

    reg [17:0] rows [0:1023];
    integer row_index;
    initial for (row_index = 0; row_index < 1024; row_index = row_index + 1)
        rows[row_index] = INITVALS[row_index * 20 +: 18];

    // A word's number, its row and its lowest bit in the row, at a port's width and address.
    function integer word_of(input integer width, input [13:0] address);
        word_of = address >> (width == 18 ? 4 : width == 9 ? 3 : width == 4 ? 2 : width == 2 ? 1 : 0);
    endfunction
    function integer row_of(input integer width, input [13:0] address);
        integer per_half, per_row;
        begin
            per_half = width >= 9 ? 1 : 8 / width;
            per_row = width == 18 ? 1 : 2 * per_half;
            row_of = word_of(width, address) / per_row;
        end
    endfunction
    function integer offset_of(input integer width, input [13:0] address);
        integer per_half, per_row, place;
        begin
            per_half = width >= 9 ? 1 : 8 / width;
            per_row = width == 18 ? 1 : 2 * per_half;
            place = word_of(width, address) % per_row;
            offset_of = (place / per_half) * 9 + (place % per_half) * width;
        end
    endfunction

    // The bits of its row that a port's word occupies (at 18 bits, on a write, those byte-enabled).
    function [17:0] mask_of(input integer width, input [13:0] address, input write);
        if (width == 18)
            mask_of = write ? {{9{address[1]}}, {9{address[0]}}} : 18'h3ffff;
        else
            mask_of = ((18'd1 << width) - 18'd1) << offset_of(width, address);
    endfunction

    function [17:0] word_at(input integer width, input [13:0] address);
        reg [17:0] bits;
        begin
            bits = rows[row_of(width, address)] >> offset_of(width, address);
            word_at = bits & ((18'd1 << width) - 18'd1);
        end
    endfunction

    // CSDECODE "0bXYZ": the port is selected when {CS2, CS1, CS0} equals XYZ.
    function [2:0] decode(input [8*5-1:0] setting);
        decode = {setting[16], setting[8], setting[0]};
    endfunction

    wire [13:0] ada = {ADA13, ADA12, ADA11, ADA10, ADA9, ADA8, ADA7, ADA6, ADA5, ADA4, ADA3, ADA2, ADA1, ADA0};
    wire [13:0] adb = {ADB13, ADB12, ADB11, ADB10, ADB9, ADB8, ADB7, ADB6, ADB5, ADB4, ADB3, ADB2, ADB1, ADB0};
    wire sel_a = {CSA2, CSA1, CSA0} == decode(CSDECODE_A);
    wire sel_b = {CSB2, CSB1, CSB0} == decode(CSDECODE_B);

    wire [17:0] dia = {DIA17, DIA16, DIA15, DIA14, DIA13, DIA12, DIA11, DIA10, DIA9, DIA8, DIA7, DIA6, DIA5, DIA4, DIA3, DIA2, DIA1, DIA0};
    wire write_a = WEA && CEA && sel_a;
    wire [17:0] write_mask = mask_of(DATA_WIDTH_A, ada, 1'b1);

    reg [17:0] latch_a = 18'd0, out_a = 18'd0, latch_b = 18'd0, out_b = 18'd0;
    always @(posedge CLKA) begin
        if (write_a && WRITEMODE_A != "NORMAL") begin
            $display("DP16KD model: port A writes in WRITEMODE_A %0s are not modelled", WRITEMODE_A);
            $finish;
        end
        if (RSTA) begin
            $display("DP16KD model: RSTA is not modelled");
            $finish;
        end
        if (write_a)
            rows[row_of(DATA_WIDTH_A, ada)] <= (rows[row_of(DATA_WIDTH_A, ada)] & ~write_mask)
                | ((dia << (DATA_WIDTH_A == 18 ? 0 : offset_of(DATA_WIDTH_A, ada))) & write_mask);
        else if (CEA && sel_a) latch_a <= word_at(DATA_WIDTH_A, ada);
        if (OCEA) out_a <= latch_a;
    end
    always @(posedge CLKB) begin
        if (WEB && CEB && sel_b) begin
            $display("DP16KD model: writes on port B are not modelled");
            $finish;
        end
        if (RSTB) begin
            $display("DP16KD model: RSTB is not modelled");
            $finish;
        end
        if (CEB && sel_b)
            latch_b <= CLKA && write_a && row_of(DATA_WIDTH_A, ada) == row_of(DATA_WIDTH_B, adb)
                && (write_mask & mask_of(DATA_WIDTH_B, adb, 1'b0)) != 18'd0 ? 18'bx : word_at(DATA_WIDTH_B, adb);
        if (OCEB) out_b <= latch_b;
    end
    wire [17:0] doa = REGMODE_A == "OUTREG" ? out_a : latch_a;
    wire [17:0] dob = REGMODE_B == "OUTREG" ? out_b : latch_b;
    assign {DOA17, DOA16, DOA15, DOA14, DOA13, DOA12, DOA11, DOA10, DOA9, DOA8, DOA7, DOA6, DOA5, DOA4, DOA3, DOA2, DOA1, DOA0} = doa;
    assign {DOB17, DOB16, DOB15, DOB14, DOB13, DOB12, DOB11, DOB10, DOB9, DOB8, DOB7, DOB6, DOB5, DOB4, DOB3, DOB2, DOB1, DOB0} = dob;
endmodule
