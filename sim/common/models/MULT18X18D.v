// Behavioural simulation model of the subset of Lattice ECP5's MULT18X18D that qarith instantiates:
// an 18x18 multiplier with optional input (A, B), pipeline and output registers, all on CLK0/CE0/RST0,
// signedness from the SIGNEDA/SIGNEDB pins. Written for qarith from the primitive's documented
// behaviour (Lattice TN1267, ECP5 sysDSP); cascade (SRI*/SRO*), SOURCE* shift modes, C input and the
// other clock/enable/reset selections are not modelled. Synthesis never reads this file: Yosys and
// nextpnr use the real primitive.
module MULT18X18D (
    input A17, A16, A15, A14, A13, A12, A11, A10, A9, A8, A7, A6, A5, A4, A3, A2, A1, A0,
    input B17, B16, B15, B14, B13, B12, B11, B10, B9, B8, B7, B6, B5, B4, B3, B2, B1, B0,
    input SIGNEDA, SIGNEDB, SOURCEA, SOURCEB,
    input CLK0, CLK1, CLK2, CLK3, CE0, CE1, CE2, CE3, RST0, RST1, RST2, RST3,
    output P35, P34, P33, P32, P31, P30, P29, P28, P27, P26, P25, P24, P23, P22, P21, P20, P19, P18,
    output P17, P16, P15, P14, P13, P12, P11, P10, P9, P8, P7, P6, P5, P4, P3, P2, P1, P0
);
    parameter REG_INPUTA_CLK = "NONE";
    parameter REG_INPUTB_CLK = "NONE";
    parameter REG_PIPELINE_CLK = "NONE";
    parameter REG_OUTPUT_CLK = "NONE";
    parameter GSR = "DISABLED";
    parameter RESETMODE = "SYNC";

    wire [17:0] a = {A17, A16, A15, A14, A13, A12, A11, A10, A9, A8, A7, A6, A5, A4, A3, A2, A1, A0};
    wire [17:0] b = {B17, B16, B15, B14, B13, B12, B11, B10, B9, B8, B7, B6, B5, B4, B3, B2, B1, B0};
    reg [17:0] a_reg = 18'd0, b_reg = 18'd0;
    reg sa_reg = 1'b0, sb_reg = 1'b0;
    always @(posedge CLK0) begin
        if (RST0) begin
            a_reg <= 18'd0; b_reg <= 18'd0; sa_reg <= 1'b0; sb_reg <= 1'b0;
        end else if (CE0) begin
            a_reg <= a; b_reg <= b; sa_reg <= SIGNEDA; sb_reg <= SIGNEDB;
        end
    end
    wire [17:0] a_in = (REG_INPUTA_CLK == "NONE") ? a : a_reg;
    wire [17:0] b_in = (REG_INPUTB_CLK == "NONE") ? b : b_reg;
    wire sa = (REG_INPUTA_CLK == "NONE") ? SIGNEDA : sa_reg;
    wire sb = (REG_INPUTB_CLK == "NONE") ? SIGNEDB : sb_reg;
    wire signed [36:0] a_ext = {{19{sa & a_in[17]}}, a_in};
    wire signed [36:0] b_ext = {{19{sb & b_in[17]}}, b_in};
    wire signed [36:0] product_full = a_ext * b_ext;
    wire [35:0] product = product_full[35:0];

    reg [35:0] pipe_reg = 36'd0, out_reg = 36'd0;
    wire [35:0] pipe = (REG_PIPELINE_CLK == "NONE") ? product : pipe_reg;
    always @(posedge CLK0) begin
        if (RST0) begin
            pipe_reg <= 36'd0; out_reg <= 36'd0;
        end else if (CE0) begin
            pipe_reg <= product; out_reg <= pipe;
        end
    end
    wire [35:0] p = (REG_OUTPUT_CLK == "NONE") ? pipe : out_reg;
    assign {P35, P34, P33, P32, P31, P30, P29, P28, P27, P26, P25, P24, P23, P22, P21, P20, P19, P18,
            P17, P16, P15, P14, P13, P12, P11, P10, P9, P8, P7, P6, P5, P4, P3, P2, P1, P0} = p;
endmodule
